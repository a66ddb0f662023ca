"""The C floor of ``bench.fidelity``: what a minimal C sender and reflector achieve here.

``bench/cfloor.c``, compiled with the system's ``cc`` into a temporary
directory, sends and reflects datagrams at the same rates, on the same
loopback address and under the same capture as the otwamp sessions: its
``t1_lead``, ``t3_lead`` and ``processing`` (T3 - T2) are how close to the
wire a program with no interpreter in the way gets on this machine, in the
same run. Where the kernel's own send and wake-up paths are slow (an idle,
virtualised CPU), no user-space implementation does better than this floor.
"""

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.procs import BenchError
from otwamp.wire.timestamp import ns_to_ntp, ntp_to_ns

SOURCE = Path(__file__).with_name("cfloor.c")


@contextmanager
def compiled() -> Iterator[Path | None]:
    """The floor program, built for this run; None when there is no C compiler."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="otwamp-cfloor-") as directory:
        program = Path(directory) / "cfloor"
        built = subprocess.run(
            [compiler, "-O2", "-o", str(program), str(SOURCE)],
            capture_output=True,
            text=True,
            check=False,
        )
        if built.returncode != 0:
            raise BenchError(f"cc {SOURCE.name}: {built.stderr.strip()[-200:]}")
        yield program


def _ntp_rounded(ns: int) -> int:
    """``ns`` as the NTP Timestamp in the packet gives it back."""
    return ntp_to_ns(ns_to_ntp(ns))


def floor_session(
    program: Path, host: str, count: int, rate: int
) -> tuple[list[int], list[int], list[int]]:
    """One C session of ``count`` packets at ``rate`` to ``host``: its T1s, T2s and T3s (ns).

    T1 and T3 as the packets carry them, T2 the reflector's kernel receive time.
    """
    timeout = count / rate + 30
    with subprocess.Popen(
        [str(program), "reflect", host, "0", str(count)], stdout=subprocess.PIPE, text=True
    ) as reflector:
        assert reflector.stdout is not None
        ready = reflector.stdout.readline().split()
        if ready[:1] != ["ready"]:
            reflector.kill()
            raise BenchError("the C reflector did not start")
        sent = subprocess.run(
            [str(program), "send", host, ready[1], str(count), repr(1.0 / rate)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        try:
            reflected, _ = reflector.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            reflector.kill()
            raise BenchError("the C reflector lost packets") from None
    if sent.returncode != 0 or reflector.returncode != 0:
        codes = f"send {sent.returncode}, reflect {reflector.returncode}"
        raise BenchError(f"the C floor failed: {codes}")
    t1 = [_ntp_rounded(int(line)) for line in sent.stdout.split()]
    pairs = [line.split() for line in reflected.splitlines()]
    t2 = [int(received) for received, _ in pairs]
    t3 = [_ntp_rounded(int(sent_back)) for _, sent_back in pairs]
    return t1, t2, t3
