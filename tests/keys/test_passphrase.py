"""Pass-phrase files in perfSONAR's pfs format (RFC 4656 §3.1 shared secrets)."""

import asyncio
import stat
from pathlib import Path

import pytest

from otwamp.errors import ConfigError, KeySourceError
from otwamp.keys.passphrase import IdentityKeys, PassphraseFile
from otwamp.wire.setup import encode_key_id


def test_reads_the_perfsonar_vector_format(tmp_path: Path) -> None:
    # The perfSONAR vectors' client file: "test<TAB>736563726574" ("secret").
    path = tmp_path / "test.pfs"
    path.write_text("# comment\n\ntest\t736563726574\n")
    store = PassphraseFile.load(path)
    credentials = store.server_secret(encode_key_id("test"), "192.0.2.1")
    assert credentials is not None
    assert credentials.secret == b"secret"
    assert credentials.label == "test"
    assert credentials.source == "passphrase"


def test_unknown_key_id_is_none(tmp_path: Path) -> None:
    path = tmp_path / "k.pfs"
    path.write_text("alice\t616263\n")
    assert PassphraseFile.load(path).server_secret(encode_key_id("bob"), "192.0.2.1") is None


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
