"""Pass-phrase files in perfSONAR's pfs format (RFC 4656 §3.1 shared secrets)."""

import asyncio
import errno
import logging
import os
import stat
import time
from pathlib import Path

import pytest

from otwamp.errors import ConfigError, KeySourceError
from otwamp.keys.passphrase import PFS_LIMIT, IdentityKeys, PassphraseFile
from otwamp.keys.source import KeySourceKind
from otwamp.wire.setup import encode_key_id


def test_reads_the_perfsonar_vector_format(tmp_path: Path) -> None:
    # The perfSONAR vectors' client file: "test<TAB>736563726574" ("secret").
    path = tmp_path / "test.pfs"
    path.write_text("# comment\n\ntest\t736563726574\n")
    store = PassphraseFile.load(path)
    credentials = asyncio.run(store.server_secret(encode_key_id("test"), "192.0.2.1"))
    assert credentials is not None
    assert credentials.secret == b"secret"
    assert credentials.label == "test"
    assert credentials.source is KeySourceKind.PASSPHRASE


def test_unknown_key_id_is_none(tmp_path: Path) -> None:
    path = tmp_path / "k.pfs"
    path.write_text("alice\t616263\n")
    store = PassphraseFile.load(path)
    assert asyncio.run(store.server_secret(encode_key_id("bob"), "192.0.2.1")) is None


def test_save_is_0600_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "k.pfs"
    store = PassphraseFile.load(path, missing_ok=True)
    store.entries["alice"] = b"pass phrase"
    store.save()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == "alice\t7061737320706872617365\n"
    assert PassphraseFile.load(path).entries == {"alice": b"pass phrase"}


@pytest.mark.parametrize(
    "line", ["alice 616263", "alice\tzz", "\t616263", "alice\t", "a" * 81 + "\t6162"]
)
def test_malformed_line_names_its_number(tmp_path: Path, line: str) -> None:
    path = tmp_path / "k.pfs"
    path.write_text(f"ok\t6162\n{line}\n")
    with pytest.raises(ConfigError, match=r"k\.pfs:2:"):
        PassphraseFile.load(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such pass-phrase file"):
        PassphraseFile.load(tmp_path / "absent.pfs")


def test_client_identity_credentials(tmp_path: Path) -> None:
    path = tmp_path / "k.pfs"
    path.write_text("alice\t616263\n")
    keys = IdentityKeys(PassphraseFile.load(path), "alice")
    credentials = asyncio.run(keys.credentials_for("192.0.2.1"))
    assert credentials.key_id == b"alice" + bytes(75)
    assert credentials.secret == b"abc"
    with pytest.raises(KeySourceError, match="no pass-phrase for identity 'bob'"):
        asyncio.run(IdentityKeys(PassphraseFile.load(path), "bob").credentials_for("192.0.2.1"))


def test_secrets_stay_out_of_reprs(tmp_path: Path) -> None:
    path = tmp_path / "k.pfs"
    path.write_text("alice\t7365637265742d76616c7565\n")  # "secret-value"
    store = PassphraseFile.load(path)
    credentials = asyncio.run(IdentityKeys(store, "alice").credentials_for("x"))
    for text in (repr(store), repr(credentials), repr(IdentityKeys(store, "alice"))):
        assert "secret-value" not in text
        assert "7365637265742d76616c7565" not in text


def test_save_never_widens_the_old_mode(tmp_path: Path) -> None:
    path = tmp_path / "k.pfs"
    path.write_text("alice\t616263\n")
    path.chmod(0o400)
    store = PassphraseFile.load(path)
    store.entries["bob"] = b"xyz"
    store.save()
    assert stat.S_IMODE(path.stat().st_mode) == 0o400
    assert PassphraseFile.load(path).entries == {"alice": b"abc", "bob": b"xyz"}


def test_save_narrows_a_world_readable_file_to_0600(tmp_path: Path) -> None:
    path = tmp_path / "k.pfs"
    path.write_text("alice\t616263\n")
    path.chmod(0o644)
    PassphraseFile.load(path).save()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_save_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "k.pfs"
    PassphraseFile(path, {"alice": b"abc"}).save()
    PassphraseFile(path, {"bob": b"xyz"}).save()
    assert [entry.name for entry in tmp_path.iterdir()] == ["k.pfs"]
    assert path.read_text() == "bob\t78797a\n"


def test_failed_save_keeps_the_old_file_and_removes_the_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "k.pfs"
    path.write_text("alice\t616263\n")

    def failing_fsync(descriptor: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(ConfigError, match=r"k\.pfs: cannot write: Input/output error$"):
        PassphraseFile(path, {"bob": b"xyz"}).save()
    assert [entry.name for entry in tmp_path.iterdir()] == ["k.pfs"]
    assert path.read_text() == "alice\t616263\n"


def test_save_refuses_to_replace_a_symbolic_link(tmp_path: Path) -> None:
    real = tmp_path / "real.pfs"
    real.write_text("alice\t616263\n")
    link = tmp_path / "k.pfs"
    link.symlink_to(real)
    with pytest.raises(ConfigError, match="not a regular file, refusing to replace it"):
        PassphraseFile(link, {"bob": b"xyz"}).save()
    assert link.is_symlink()
    assert real.read_text() == "alice\t616263\n"


def test_save_into_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot write: no such directory"):
        PassphraseFile(tmp_path / "absent" / "k.pfs", {"bob": b"xyz"}).save()


def test_load_follows_a_symbolic_link(tmp_path: Path) -> None:
    # The operator may link the file into place; only writes refuse links.
    real = tmp_path / "real.pfs"
    real.write_text("alice\t616263\n")
    real.chmod(0o600)
    (tmp_path / "k.pfs").symlink_to(real)
    assert PassphraseFile.load(tmp_path / "k.pfs").entries == {"alice": b"abc"}


def test_load_takes_a_file_at_the_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "k.pfs"
    line = "alice\t616263\n"
    path.write_text("#" * (PFS_LIMIT - len(line) - 1) + "\n" + line)
    assert path.stat().st_size == PFS_LIMIT
    assert PassphraseFile.load(path).entries == {"alice": b"abc"}


def test_load_refuses_a_file_over_the_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "k.pfs"
    path.write_text("#" * PFS_LIMIT + "\n")
    with pytest.raises(ConfigError, match=f"larger than {PFS_LIMIT} octets"):
        PassphraseFile.load(path)


def test_load_refuses_a_huge_sparse_file_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "k.pfs"
    with path.open("wb") as handle:
        handle.truncate(24 << 30)
    started = time.monotonic()
    with pytest.raises(ConfigError, match=f"larger than {PFS_LIMIT} octets"):
        PassphraseFile.load(path)
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/full", "/dev/null"])
def test_load_refuses_devices(device: str) -> None:
    with pytest.raises(ConfigError, match=f"^{device}: not a regular file"):
        PassphraseFile.load(Path(device))


def test_load_refuses_a_fifo_without_blocking(tmp_path: Path) -> None:
    path = tmp_path / "k.pfs"
    os.mkfifo(path)
    with pytest.raises(ConfigError, match="not a regular file"):
        PassphraseFile.load(path, missing_ok=True)


def test_load_refuses_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a regular file"):
        PassphraseFile.load(tmp_path)


def test_load_refuses_text_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "k.pfs"
    path.write_bytes(b"\xff\tab\n")
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        PassphraseFile.load(path)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_server_keys_warn_when_group_or_others_can_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, mode: int
) -> None:
    path = tmp_path / "k.pfs"
    path.write_text("alice\t616263\n")
    path.chmod(mode)
    with caplog.at_level(logging.WARNING, logger="otwamp"):
        PassphraseFile.load_server_keys(path)
    assert [(record.levelname, record.getMessage()) for record in caplog.records] == [
        (
            "WARNING",
            f"key file {path} is readable by group/others (mode {mode:04o}); chmod 600 {path}",
        )
    ]


@pytest.mark.parametrize("mode", [0o600, 0o400, 0o620])
def test_server_keys_are_silent_when_only_the_owner_can_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, mode: int
) -> None:
    path = tmp_path / "k.pfs"
    path.write_text("alice\t616263\n")
    path.chmod(mode)
    with caplog.at_level(logging.DEBUG, logger="otwamp"):
        PassphraseFile.load_server_keys(path)
    assert caplog.records == []


def test_a_client_key_file_is_read_without_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Only the server's file is checked (S7); clients' files are the user's business.
    path = tmp_path / "k.pfs"
    path.write_text("alice\t616263\n")
    path.chmod(0o644)
    with caplog.at_level(logging.DEBUG, logger="otwamp"):
        assert PassphraseFile.load(path).entries == {"alice": b"abc"}
    assert caplog.records == []
