"""S7: pass-phrase and configuration files under attack, for real on the file system.

Each case runs the ``otwamp`` command as a separate process, as an ordinary
user (``nobody`` when the tests run as root, since root ignores file
permissions), and checks that it ends within a few seconds with one
``otwamp:`` line and a small RSS: planted ``FILE.tmp`` links and loose files
get no secret, devices, FIFOs and huge files are refused before any read, and
read-only directories or unreadable files are reported, never a traceback.
"""

import contextlib
import functools
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pytest

from otwamp.keys.passphrase import PFS_LIMIT
from tests.e2e.processes import otwamp_command

pytestmark = pytest.mark.timeout(60)

NOBODY = 65534
DEADLINE = 5.0  # seconds any refusal may take
RSS_LIMIT_KIB = 100 * 1024  # the interpreter and otwamp take about 40 MiB
SECRET = b"correct horse battery staple"
SECRET_LINE = f"alice\t{SECRET.hex()}\n"
SET_FILE_SIZE_LIMIT_AND_EXEC = (
    "import os, resource, sys; limit = int(sys.argv[1]);"
    " resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit));"
    " os.execv(sys.argv[2], sys.argv[2:])"
)


@dataclass(frozen=True)
class Outcome:
    """How an ``otwamp`` process ended."""

    status: int
    stderr: str


@dataclass(frozen=True)
class Account:
    """The user the key file belongs to, and the command prefix that runs as it."""

    uid: int
    prefix: tuple[str, ...] = ()


@functools.cache
def victim() -> Account:
    """An ordinary user: ourselves, or ``nobody`` through setpriv when the tests run as root."""
    if os.geteuid() != 0:
        return Account(os.geteuid())
    setpriv = shutil.which("setpriv")
    if setpriv is not None:
        prefix = (setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups")
        command = [*prefix, *otwamp_command(), "--version"]
        probe = subprocess.run(command, check=False, capture_output=True)
        if probe.returncode == 0:
            return Account(NOBODY, prefix)
    return Account(0)


def needs_permissions() -> None:
    if victim().uid == 0:
        pytest.skip("root ignores file permissions and setpriv cannot run otwamp as nobody")


def otwamp(
    *args: str,
    stdin: bytes | BinaryIO = SECRET + b"\n",
    file_size_limit: int | None = None,
) -> Outcome:
    """Run ``otwamp *args`` as the victim; fail unless it ends in time with a small RSS."""
    started = time.monotonic()
    process = subprocess.Popen(
        [*_limited(file_size_limit), *victim().prefix, *otwamp_command(), *args],
        stdin=subprocess.PIPE if isinstance(stdin, bytes) else stdin,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    if isinstance(stdin, bytes):
        assert process.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            process.stdin.write(stdin)
            process.stdin.close()
    # The peak RSS of the program the child runs now: ru_maxrss would also count the pytest
    # process the child was forked from (exec keeps the old memory's peak, fs/exec.c).
    peak_kib = 0
    while True:
        peak_kib = max(peak_kib, _peak_rss_kib(process.pid))
        pid, status = os.waitpid(process.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() - started > DEADLINE:
            process.kill()
            os.wait4(process.pid, 0)
            pytest.fail(f"otwamp {' '.join(args)} still running after {DEADLINE} s")
        time.sleep(0.01)
    process.returncode = os.waitstatus_to_exitcode(status)
    assert process.stderr is not None
    stderr = process.stderr.read().decode()
    process.stderr.close()
    assert peak_kib < RSS_LIMIT_KIB, f"RSS {peak_kib} KiB"
    return Outcome(process.returncode, stderr)


def _peak_rss_kib(pid: int) -> int:
    """VmHWM of a running process (0 once it exited): the peak since its last exec."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) if match else 0


def _limited(file_size_limit: int | None) -> list[str]:
    """A prefix that sets RLIMIT_FSIZE, so that write(2) fails with EFBIG beyond the limit."""
    if file_size_limit is None:
        return []
    return [sys.executable, "-c", SET_FILE_SIZE_LIMIT_AND_EXEC, str(file_size_limit)]


def assert_one_line(outcome: Outcome, message: str) -> None:
    assert (outcome.status, outcome.stderr) == (1, f"otwamp: {message}\n")


@pytest.fixture
def home() -> Iterator[Path]:
    """A directory of the unprivileged user, where its key file lives."""
    directory = Path(tempfile.mkdtemp(prefix="otwamp-s7-"))  # not under root's 0700 tmp_path
    os.chown(directory, victim().uid, -1)
    yield directory
    directory.chmod(0o700)  # some cases make it read-only
    shutil.rmtree(directory)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def add_alice(path: Path) -> None:
    outcome = otwamp("keys", "add", "-f", str(path), "alice")
    assert (outcome.status, outcome.stderr) == (0, f"alice: pass-phrase stored in {path}\n")


def assert_private_key_file(path: Path) -> None:
    """``path`` is a regular 0600 file of the victim holding alice's pass-phrase."""
    status = path.lstat()
    assert stat.S_ISREG(status.st_mode)
    assert (status.st_uid, mode(path)) == (victim().uid, 0o600)
    assert path.read_text() == SECRET_LINE


def test_a_planted_dangling_tmp_link_gets_no_secret(home: Path) -> None:
    path = home / "keys.pfs"
    stolen = home / "stolen"
    (home / "keys.pfs.tmp").symlink_to(stolen)  # the name the old code wrote through
    add_alice(path)
    assert not stolen.exists()
    assert_private_key_file(path)
    assert os.readlink(home / "keys.pfs.tmp") == str(stolen)


def test_a_planted_tmp_link_to_a_writable_file_leaves_it_alone(home: Path) -> None:
    path = home / "keys.pfs"
    bait = home / "bait"
    bait.write_text("the attacker's\n")
    bait.chmod(0o666)
    (home / "keys.pfs.tmp").symlink_to(bait)
    add_alice(path)
    assert bait.read_text() == "the attacker's\n"
    assert_private_key_file(path)


def test_a_planted_0644_tmp_file_does_not_make_the_key_world_readable(home: Path) -> None:
    path = home / "keys.pfs"
    planted = home / "keys.pfs.tmp"
    planted.write_text("")
    os.chown(planted, victim().uid, -1)  # writable by the victim: the old code reused it
    planted.chmod(0o644)
    add_alice(path)
    assert_private_key_file(path)
    assert planted.read_text() == ""
    assert sorted(entry.name for entry in home.iterdir()) == ["keys.pfs", "keys.pfs.tmp"]


def test_a_world_readable_key_file_becomes_private_when_rewritten(home: Path) -> None:
    path = home / "keys.pfs"
    add_alice(path)
    path.chmod(0o644)
    add_alice(path)
    assert_private_key_file(path)


def sparse(home: Path) -> str:
    path = home / "huge.pfs"
    with path.open("wb") as handle:
        handle.truncate(24 << 30)
    return str(path)


def fifo(home: Path) -> str:
    os.mkfifo(home / "keys.pfs")
    return str(home / "keys.pfs")


NOT_REGULAR = "not a regular file, cannot be a"
ATTACKS: list[tuple[str, Callable[[Path], str], list[str], str]] = [
    ("keys add", lambda home: "/dev/full", ["keys", "add", "-f", "{}", "alice"], NOT_REGULAR),
    ("keys list", lambda home: "/dev/zero", ["keys", "list", "-f", "{}"], NOT_REGULAR),
    ("keys del", fifo, ["keys", "del", "-f", "{}", "alice"], NOT_REGULAR),
    ("keys list", sparse, ["keys", "list", "-f", "{}"], f"larger than {PFS_LIMIT} octets"),
    (
        "server keyfile",
        lambda home: "/dev/zero",
        ["server", "--keyfile", "{}", "--modes", "authenticated"],
        NOT_REGULAR,
    ),
    (
        "server keyfile",
        sparse,
        ["server", "--keyfile", "{}", "--modes", "authenticated"],
        "larger than",
    ),
    ("server config", lambda home: "/dev/full", ["server", "--config", "{}"], NOT_REGULAR),
    ("server config", fifo, ["server", "--config", "{}"], NOT_REGULAR),
    ("ping", lambda home: "/dev/zero", ["ping", "127.0.0.1:9", "-u", "a", "-k", "{}"], NOT_REGULAR),
    ("owping", fifo, ["owping", "127.0.0.1:9", "-u", "a", "-k", "{}"], NOT_REGULAR),
]


@pytest.mark.parametrize(
    ("target", "command", "message"),
    [attack[1:] for attack in ATTACKS],
    ids=[f"{attack[0]}-{index}" for index, attack in enumerate(ATTACKS)],
)
def test_devices_fifos_and_huge_files_are_refused_at_once(
    home: Path, target: Callable[[Path], str], command: list[str], message: str
) -> None:
    path = target(home)
    outcome = otwamp(*(part.format(path) for part in command))
    assert outcome.status == 1
    assert outcome.stderr.startswith(f"otwamp: {path}: {message}")
    assert outcome.stderr.count("\n") == 1


def test_an_endless_pass_phrase_on_stdin_is_refused(home: Path) -> None:
    with open("/dev/zero", "rb") as zeros:
        outcome = otwamp("keys", "add", "-f", str(home / "keys.pfs"), "alice", stdin=zeros)
    assert_one_line(outcome, "a pass-phrase for keys add is at most 1024 octets")
    assert list(home.iterdir()) == []


def test_a_read_only_directory_is_refused_before_the_pass_phrase(home: Path) -> None:
    needs_permissions()
    home.chmod(0o555)
    path = home / "keys.pfs"
    outcome = otwamp("keys", "add", "-f", str(path), "alice", stdin=b"")
    assert_one_line(outcome, f"{path}: cannot write: directory {home} is not writable")
    assert list(home.iterdir()) == []


def test_deleting_in_a_read_only_directory_keeps_the_file(home: Path) -> None:
    needs_permissions()
    path = home / "keys.pfs"
    add_alice(path)
    home.chmod(0o555)
    outcome = otwamp("keys", "del", "-f", str(path), "alice")
    assert_one_line(outcome, f"{path}: cannot write: directory {home} is not writable")
    assert_private_key_file(path)


def test_a_missing_directory(home: Path) -> None:
    path = home / "absent" / "keys.pfs"
    outcome = otwamp("keys", "add", "-f", str(path), "alice")
    assert_one_line(outcome, f"{path}: cannot write: no such directory {home / 'absent'}")


@pytest.mark.parametrize(
    "command",
    [
        ["keys", "list", "-f", "{}"],
        ["keys", "add", "-f", "{}", "bob"],
        ["server", "--keyfile", "{}"],
        ["server", "--config", "{}"],
        ["ping", "127.0.0.1:9", "-u", "a", "-k", "{}"],
    ],
    ids=["keys list", "keys add", "server keyfile", "server config", "ping"],
)
def test_an_unreadable_file(home: Path, command: list[str]) -> None:
    needs_permissions()
    path = home / "keys.pfs"
    path.write_text(SECRET_LINE)
    path.chmod(0)
    outcome = otwamp(*(part.format(path) for part in command))
    assert_one_line(outcome, f"{path}: cannot read: Permission denied")


def test_a_write_cut_short_keeps_the_old_file_and_no_temporary(home: Path) -> None:
    path = home / "keys.pfs"
    add_alice(path)

    outcome = otwamp("keys", "add", "-f", str(path), "bob", stdin=b"b" * 100, file_size_limit=64)
    assert_one_line(outcome, f"{path}: cannot write: File too large")
    assert_private_key_file(path)
    assert [entry.name for entry in home.iterdir()] == ["keys.pfs"]
