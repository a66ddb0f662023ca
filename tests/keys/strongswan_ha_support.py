"""Two charons with the HA plugin in one network namespace, and a recorder of their HA datagrams.

The responder's HA plugin sends 127.0.0.1:4510 -> 127.0.0.2:4510, the initiator's
127.0.0.3:4510 -> 127.0.0.4:4510; both run IKE on 127.0.0.1 (tests/ike/interop/charon.py).
``python -m tests.keys.strongswan_ha_support`` (as root, from the repository) rewrites the
recorded fixtures in tests/keys/data/.
"""

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.ike.interop.charon import PLUGINS, PSK, Charon, Connection, run_in

DATA = Path(__file__).with_name("data")
INIT_ID, RESP_ID = "init.ippm.test", "resp.ippm.test"
RESP_HA, INIT_HA = ("127.0.0.1", "127.0.0.2"), ("127.0.0.3", "127.0.0.4")  # (local, remote)
HA_SECTION = """    plugins {{
        ha {{
            local = {local}
            remote = {remote}
            monitor = no
            resync = no
            fifo_interface = no
        }}
"""
RECORDER = """
import json, select, socket, sys
socks = []
for address in sys.argv[1:]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((address, 4510))
    socks.append(s)
print("ready", flush=True)
while True:
    for s in select.select(socks, [], [])[0]:
        data, source = s.recvfrom(65535)
        print(json.dumps({"to": s.getsockname()[0], "from": "%s:%d" % source, "hex": data.hex()}),
              flush=True)
"""


def ha_charon(netns: str, directory: Path, connection: Connection, ha: tuple[str, str]) -> Charon:
    """A Charon of tests/ike/interop whose strongswan.conf also loads the HA plugin (and XCBC)."""
    charon = Charon(netns, directory, connection)
    conf = directory / "strongswan.conf"
    text = conf.read_text().replace(f"load = {PLUGINS}", f"load = {PLUGINS} xcbc cmac ha")
    text = text.replace("    plugins {\n", HA_SECTION.format(local=ha[0], remote=ha[1]), 1)
    conf.write_text(text)
    return charon


@dataclass
class Recorder:
    """Datagrams charon sent to the HA ``remote`` addresses, read by a process in the netns."""

    process: subprocess.Popen[str]
    datagrams: list[dict[str, str]] = field(default_factory=list)

    def to(self, address: str) -> list[bytes]:
        """What was sent to ``address`` so far, in order."""
        assert self.process.stdout is not None
        os.set_blocking(self.process.stdout.fileno(), False)
        for line in self.process.stdout:
            self.datagrams.append(json.loads(line))
        return [bytes.fromhex(d["hex"]) for d in self.datagrams if d["to"] == address]


@contextlib.contextmanager
def recording(netns: str, *addresses: str) -> Iterator[Recorder]:
    """A recorder bound to ``addresses``:4510 in ``netns`` for the block's duration."""
    process = subprocess.Popen(
        ["ip", "netns", "exec", netns, sys.executable, "-c", RECORDER, *addresses],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdout.readline() == "ready\n"
        yield Recorder(process)
    finally:
        process.kill()
        process.wait()


@contextlib.contextmanager
def namespace(name: str) -> Iterator[str]:
    """A network namespace with lo up, deleted afterwards."""
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        run_in(name, "ip", "link", "set", "lo", "up")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=True)


@dataclass
class Pair:
    """The responder and initiator charons of one proposal."""

    responder: Charon
    initiator: Charon


@contextlib.contextmanager
def charon_pair(
    netns: str, directory: Path, proposal: str, responder_psk: str = PSK
) -> Iterator[Pair]:
    """Both charons started (the responder's PSK may differ, to fail authentication)."""
    responder = ha_charon(
        netns,
        directory / "resp",
        Connection(RESP_ID, INIT_ID, proposal, 15500, initiator=False),
        RESP_HA,
    )
    swanctl = responder.dir / "swanctl" / "swanctl.conf"
    swanctl.write_text(swanctl.read_text().replace(PSK, responder_psk))
    initiator = ha_charon(
        netns,
        directory / "init",
        Connection(INIT_ID, RESP_ID, proposal, 15600, initiator=True, remote_port=15500),
        INIT_HA,
    )
    started: list[Charon] = []
    try:
        for charon in (responder, initiator):
            charon.start()
            started.append(charon)
        yield Pair(responder, initiator)
    finally:
        for charon in started:
            charon.stop()


def settle(recorder: Recorder, address: str, count: int, timeout: float = 10) -> list[bytes]:
    """The datagrams sent to ``address`` once at least ``count`` arrived."""
    deadline = time.monotonic() + timeout
    while len(found := recorder.to(address)) < count:
        assert time.monotonic() < deadline, f"only {len(found)} HA datagrams to {address}"
        time.sleep(0.05)
    time.sleep(0.2)  # what belongs to the same exchange
    return recorder.to(address)


def record(directory: Path, netns: str, proposal: str) -> dict[str, dict[str, list[str]]]:
    """Set up an SA, rekey it from the initiator then the responder; datagrams and SK_ds."""
    with recording(netns, RESP_HA[1], INIT_HA[1]) as recorder:
        with charon_pair(netns, directory, proposal) as pair:
            pair.initiator.swanctl("--initiate", "--ike", "ippm")
            settle(recorder, RESP_HA[1], 3)
            pair.initiator.swanctl("--rekey", "--ike", "ippm")
            settle(recorder, RESP_HA[1], 7)
            pair.responder.swanctl("--rekey", "--ike", "ippm")
            settle(recorder, RESP_HA[1], 11)
            charons = {"responder": pair.responder, "initiator": pair.initiator}
            sk_d = {role: [k.hex() for k in c.sk_d()] for role, c in charons.items()}
        datagrams = {"responder": recorder.to(RESP_HA[1]), "initiator": recorder.to(INIT_HA[1])}
    return {
        role: {"datagrams": [d.hex() for d in datagrams[role]], "sk_d": sk_d[role]}
        for role in charons
    }


PROPOSALS = {  # proposal -> the fixture's name
    "aes128-sha256-x25519": "hmac-sha256",
    "aes128-aesxcbc-prfaesxcbc-x25519": "aes-xcbc",
    "aes256-sha384-ecp384": "hmac-sha384",
    "aes128-aescmac-prfaescmac-ecp256": "aes-cmac",
}


if __name__ == "__main__":  # regenerate the fixtures
    import tempfile

    DATA.mkdir(exist_ok=True)
    with namespace(f"ha-fix{os.getpid()}") as ns:
        for proposal, name in PROPOSALS.items():
            with tempfile.TemporaryDirectory() as tmp:
                recorded = {"proposal": proposal, **record(Path(tmp), ns, proposal)}
            (DATA / f"strongswan_ha_{name}.json").write_text(json.dumps(recorded, indent=1) + "\n")
            print(name, {role: len(recorded[role]["sk_d"]) for role in ("responder", "initiator")})
