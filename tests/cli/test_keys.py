"""``otwamp keys``: pfs files kept private, and every refusal as one ``otwamp:`` line."""

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from otwamp.cli.keys import PASSPHRASE_LIMIT
from otwamp.cli.main import main
from otwamp.keys.passphrase import PFS_LIMIT


def otwamp(*args: str, stdin: bytes = b"") -> Result:
    return CliRunner().invoke(main, list(args), input=stdin)


def assert_one_line_error(result: Result, message: str) -> None:
    """Exit status 1 and exactly ``otwamp: message`` on stderr: no usage text, no traceback."""
    assert result.exit_code == 1, result.output
    assert result.stderr == f"otwamp: {message}\n"
    assert result.stdout == ""


def test_add_list_del(tmp_path: Path) -> None:
    path = tmp_path / "k.pfs"
    added = otwamp("keys", "add", "-f", str(path), "alice", stdin=b"secret\n")
    assert added.exit_code == 0, added.output
    assert added.stderr == f"alice: pass-phrase stored in {path}\n"
    assert otwamp("keys", "add", "-f", str(path), "bob", stdin=b"abc\r\n").exit_code == 0
    assert path.read_text() == "alice\t736563726574\nbob\t616263\n"  # perfSONAR pfs format
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert otwamp("keys", "list", "-f", str(path)).stdout == "alice\nbob\n"
    assert otwamp("keys", "del", "-f", str(path), "alice").exit_code == 0
    assert path.read_text() == "bob\t616263\n"
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["k.pfs"]


def test_the_longest_pass_phrase_from_stdin_is_stored(tmp_path: Path) -> None:
    path = tmp_path / "k.pfs"
    result = otwamp("keys", "add", "-f", str(path), "alice", stdin=b"p" * PASSPHRASE_LIMIT + b"\n")
    assert result.exit_code == 0, result.output
    assert path.read_text() == "alice\t" + "70" * PASSPHRASE_LIMIT + "\n"


def sparse(path: Path, size: int) -> Path:
    with path.open("wb") as handle:
        handle.truncate(size)
    return path


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def link_to_real_file(path: Path) -> Path:
    real = path.with_name("real.pfs")
    real.write_text("alice\t616263\n")
    real.chmod(0o600)
    path.symlink_to(real)
    return path


Setup = Callable[[Path], Path]

REFUSALS: list[tuple[str, Setup, list[str], bytes, str]] = [
    (
        "missing directory",
        lambda tmp: tmp / "absent" / "k.pfs",
        ["add"],
        b"secret\n",
        "{path}: cannot write: no such directory {tmp}/absent",
    ),
    (
        "/dev/full as the file to add to",
        lambda tmp: Path("/dev/full"),
        ["add"],
        b"secret\n",
        "{path}: not a regular file, cannot be a pass-phrase file",
    ),
    (
        "/dev/zero as the file to list",
        lambda tmp: Path("/dev/zero"),
        ["list"],
        b"",
        "{path}: not a regular file, cannot be a pass-phrase file",
    ),
    (
        "a FIFO (must not block)",
        lambda tmp: fifo(tmp / "k.pfs"),
        ["add"],
        b"secret\n",
        "{path}: not a regular file, cannot be a pass-phrase file",
    ),
    (
        "a 24 GB file",
        lambda tmp: sparse(tmp / "k.pfs", 24 << 30),
        ["list"],
        b"",
        f"{{path}}: larger than {PFS_LIMIT} octets, the limit for a pass-phrase file",
    ),
    (
        "a symbolic link to replace",
        lambda tmp: link_to_real_file(tmp / "k.pfs"),
        ["add"],
        b"secret\n",
        "{path}: not a regular file, refusing to replace it",
    ),
    (
        "a missing file to delete from",
        lambda tmp: tmp / "k.pfs",
        ["del"],
        b"",
        "{path}: no such pass-phrase file",
    ),
    (
        "an endless pass-phrase on stdin",
        lambda tmp: tmp / "k.pfs",
        ["add"],
        b"\0" * (4 * PASSPHRASE_LIMIT),
        f"a pass-phrase for keys add is at most {PASSPHRASE_LIMIT} octets",
    ),
]


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("setup", "command", "stdin", "message"),
    [case[1:] for case in REFUSALS],
    ids=[case[0] for case in REFUSALS],
)
def test_refusals_are_one_line(
    tmp_path: Path, setup: Setup, command: list[str], stdin: bytes, message: str
) -> None:
    path = setup(tmp_path)
    identity = [] if command == ["list"] else ["alice"]
    result = otwamp("keys", *command, "-f", str(path), *identity, stdin=stdin)
    assert_one_line_error(result, message.format(path=path, tmp=tmp_path))


def test_refused_add_changes_nothing(tmp_path: Path) -> None:
    path = link_to_real_file(tmp_path / "k.pfs")
    otwamp("keys", "add", "-f", str(path), "bob", stdin=b"secret\n")
    assert path.is_symlink()
    assert (tmp_path / "real.pfs").read_text() == "alice\t616263\n"
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["k.pfs", "real.pfs"]


def test_unreadable_directory_is_refused_before_the_pass_phrase_is_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Root writes anywhere; tests/abuse/test_key_files.py does this for real, unprivileged.
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    result = otwamp("keys", "add", "-f", str(tmp_path / "k.pfs"), "alice")  # empty stdin
    assert_one_line_error(
        result, f"{tmp_path / 'k.pfs'}: cannot write: directory {tmp_path} is not writable"
    )
