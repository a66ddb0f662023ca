"""``python -m bench.soak_zygote``: a fork server that runs ``otwamp`` commands as processes.

A fresh ``otwamp ping`` process spends about 0.45 s of CPU importing Python
modules before it sends a packet: a hundred concurrent clients that start and
end all the time would take more CPU than the 2-core machine has. This
process imports otwamp's CLI once, then forks one child per command; the
child runs the CLI's own ``main()`` with the command's arguments, its stdout
and stderr in files. Each client is a real process (its own sockets, exit
status and ``otwamp:`` line; SIGKILL kills it mid-session) without the
imports.

Protocol, one JSON object per line: on stdin ``{"id", "argv", "out",
"err"}``; on stdout ``{"id", "pid"}`` once forked and ``{"id", "status",
"cpu"}`` once reaped (status as ``subprocess`` reports it: negative for a
signal; cpu: user + system seconds). EOF on stdin kills the children and ends
the zygote, and a child dies with the zygote (PR_SET_PDEATHSIG), so nothing
outlives the soak driver.
"""

import contextlib
import ctypes
import json
import os
import selectors
import signal
import sys
from typing import Any

PR_SET_PDEATHSIG = 1  # prctl(2)
REAP_EVERY = 0.02  # seconds between waitpid polls while stdin is quiet


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent exits (Linux)."""
    # Not Linux: the EOF on stdin still ends everything.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _emit(message: dict[str, Any]) -> None:
    os.write(1, (json.dumps(message) + "\n").encode())


def _child(argv: list[str], out: str, err: str) -> None:
    """In the forked child: redirect, run ``otwamp ARGV``, exit with its status."""
    status = 1
    try:
        die_with_parent()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        for fd, path, flags in (
            (0, os.devnull, os.O_RDONLY),
            (1, out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
            (2, err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
        ):
            opened = os.open(path, flags, 0o600)
            os.dup2(opened, fd)
            os.close(opened)
        from otwamp.cli.main import main

        main(argv, prog_name="otwamp")
        status = 0
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # a traceback in the CLI: keep it in the child's stderr
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(status)


def _spawn(request: dict[str, Any], children: dict[int, int]) -> None:
    pid = os.fork()
    if pid == 0:
        _child(request["argv"], request["out"], request["err"])
    children[pid] = request["id"]
    _emit({"id": request["id"], "pid": pid})


def _reap(children: dict[int, int]) -> None:
    while children:
        try:
            pid, status, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        cpu = round(usage.ru_utime + usage.ru_stime, 4)
        _emit({"id": children.pop(pid), "status": code, "cpu": cpu})


def _kill_all(children: dict[int, int]) -> None:
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for pid in list(children):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


def serve() -> None:
    """Fork a child per request line until stdin closes."""
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver decides when we stop
    import otwamp.cli.main  # noqa: F401  (imported once, shared by every child)

    children: dict[int, int] = {}
    selector = selectors.DefaultSelector()
    selector.register(0, selectors.EVENT_READ)
    pending = b""
    _emit({"ready": True})
    try:
        while True:
            if selector.select(REAP_EVERY):
                data = os.read(0, 65536)
                if not data:
                    return
                pending += data
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    _spawn(json.loads(line), children)
            _reap(children)
    finally:
        _kill_all(children)


if __name__ == "__main__":
    serve()
