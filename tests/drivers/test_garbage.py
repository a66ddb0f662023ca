"""Finished sessions leave no reference cycles: their objects go with their last reference.

Cyclic garbage waits for a full collection, and a full collection over
hundreds of finished connections (their sockets, cipher and HMAC contexts)
held the server's event loop for 50 to 80 ms in the soak (issue 10). The
server and the clients run here in one process, every mode, both protocols;
what the collector finds afterwards must not include any of otwamp's objects.
asyncio's own transport keeps a cycle with its read callback (CPython 3.11);
it holds only the closed socket, so it is left out.
"""

import asyncio
import gc
from pathlib import Path

import pytest

from otwamp.cli.serving import serving
from otwamp.drivers.control_client import PingSettings
from otwamp.drivers.control_server import ServerSettings
from otwamp.drivers.owamp_client import owping
from otwamp.drivers.stamp_reflector import StampReflectorSettings
from otwamp.drivers.twamp_client import ping
from otwamp.keys.passphrase import IdentityKeys, PassphraseFile
from otwamp.wire.registry import TwampMode
from tests.e2e.ike_support import free_port

MODES = (TwampMode.UNAUTHENTICATED, TwampMode.AUTHENTICATED, TwampMode.ENCRYPTED)


def otwamp_garbage() -> list[str]:
    """Type names of otwamp's objects that only a collection would free."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        found = [type(o) for o in gc.garbage]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    return sorted(
        {f"{t.__module__}.{t.__qualname__}" for t in found if t.__module__.startswith("otwamp")}
    )


@pytest.fixture
def keyfile(tmp_path: Path) -> Path:
    path = tmp_path / "keys.pfs"
    path.write_text(f"alice\t{b'garbage-free'.hex()}\n")
    path.chmod(0o600)
    return path


def test_finished_sessions_leave_no_cycles(keyfile: Path) -> None:
    twamp, owamp = free_port("127.0.0.1"), free_port("127.0.0.1")
    store = PassphraseFile.load(keyfile)
    settings = ServerSettings(
        listen=(("127.0.0.1", twamp),),
        owamp_listen=(("127.0.0.1", owamp),),
        modes=TwampMode(0x07),
        key_sources=(store,),
    )

    async def measure() -> None:
        async with serving(settings, StampReflectorSettings()):
            for mode in MODES:
                asked = dict(count=5, interval=0.01, wait=0.2, modes=(mode,))
                asked["keys"] = IdentityKeys(store, "alice")
                done = await ping(PingSettings("127.0.0.1", twamp, **asked))
                assert done.problem is None and done.record is not None
                outcome = await owping(PingSettings("127.0.0.1", owamp, **asked))
                assert outcome.problem is None and outcome.to is not None
            await asyncio.sleep(0.2)  # the server sees both connections end
        del done, outcome

    gc.collect()
    gc.disable()  # what the run leaves as cycles stays to be found
    try:
        asyncio.run(measure())
        assert otwamp_garbage() == []
    finally:
        gc.enable()
        gc.unfreeze()  # serving() froze what existed then: give it back to the collector
