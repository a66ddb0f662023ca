"""O/TWAMP keyed by strongSwan's IKE SA through charon's HA plugin, between two hosts (issue 14).

Network namespaces ha-a (client, 10.77.0.1) and ha-b (server, 10.77.0.2) joined by a veth,
each with its own charon-systemd whose HA plugin sends 127.0.0.1:4510 -> 127.0.0.2:4510 on its
own loopback. charon A sets up a childless IKE SA with charon B; ``otwamp server
--strongswan-ha`` in B and ``otwamp ping/owping --key-source strongswan`` in A take their key
from it: TWAMP authenticated and encrypted, OWAMP encrypted both ways; a rekey during a session
leaves it undisturbed and the next one uses the new SA; SPIs charon B does not have get
Accept 6; after a delete the client finds no SA.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.ike_support import Logged, wait_until
from tests.e2e.processes import otwamp_command
from tests.ike.interop.charon import CHARON, Charon, Connection, run_in
from tests.keys.strongswan_ha_support import ha_charon

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(
        os.geteuid() != 0 or not shutil.which("ip") or not Path(CHARON).exists(),
        reason="needs root, ip netns and charon-systemd (scripts/install-debian-deps.sh)",
    ),
]

A, B = "10.77.0.1", "10.77.0.2"
HA = ("127.0.0.1", "127.0.0.2")  # charon's ha.local, ha.remote: the same in both hosts
PROPOSAL = "aes128-sha256-x25519"
KEY_SOURCE = ["--key-source", "strongswan", "--strongswan-ha", HA[1], "--strongswan-resync"]
COUNT = 20


@pytest.fixture
def hosts() -> Iterator[tuple[str, str]]:
    """ha-aPID and ha-bPID joined by a veth pair."""
    a, b = f"ha-a{os.getpid()}", f"ha-b{os.getpid()}"
    made = []
    try:
        for name in (a, b):
            subprocess.run(["ip", "netns", "add", name], check=True)
            made.append(name)
        subprocess.run(
            ["ip", "link", "add", "ha-a0", "netns", a, "type", "veth", "peer", "ha-b0", "netns", b],
            check=True,
        )
        for name, address, link in ((a, A, "ha-a0"), (b, B, "ha-b0")):
            run_in(name, "ip", "addr", "add", f"{address}/24", "dev", link)
            run_in(name, "ip", "link", "set", link, "up")
            run_in(name, "ip", "link", "set", "lo", "up")
        yield a, b
    finally:
        for name in made:
            subprocess.run(["ip", "netns", "del", name], check=False)


def _charon(netns: str, directory: Path, address: str, peer: str, initiator: bool) -> Charon:
    own, other = ("a.ippm.test", "b.ippm.test") if initiator else ("b.ippm.test", "a.ippm.test")
    connection = Connection(own, other, PROPOSAL, 500, initiator=initiator)
    charon = ha_charon(netns, directory, connection, HA)
    swanctl = directory / "swanctl" / "swanctl.conf"
    text = swanctl.read_text().replace("local_addrs = 127.0.0.1", f"local_addrs = {address}")
    swanctl.write_text(text.replace("remote_addrs = 127.0.0.1", f"remote_addrs = {peer}"))
    return charon


def _cli(netns: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", netns, *otwamp_command(), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _ping(netns: str, *args: str, count: int = COUNT) -> dict[str, object]:
    result = _cli(netns, "ping", B, "-c", str(count), "-i", "0.01", "--wait", "0.5", "--json",
                  *KEY_SOURCE, *args)  # fmt: skip
    assert result.returncode == 0, result.stderr
    document: dict[str, object] = json.loads(result.stdout)
    assert document["key_source"] == "ikev2-strongswan"
    packets = document["packets"]
    assert isinstance(packets, dict)
    assert (packets["sent"], packets["received"], packets["lost"]) == (count, count, 0)
    return document


def _charon_spis(charon: Charon) -> tuple[str, str]:
    listing = charon.swanctl("--list-sas")
    words = listing.split()
    spi_i = next(w for w in words if w.endswith("_i") or w.endswith("_i*")).split("_")[0]
    spi_r = next(w for w in words if w.endswith("_r") or w.endswith("_r*")).split("_")[0]
    return spi_i, spi_r


def _accept_for_fabricated_spis(netns: str) -> int:
    """Set-Up-Response with a KeyID naming SPIs no charon has, from host A; the Accept value."""
    code = (
        "import os; from tests.e2e.ike_support import raw_set_up; "
        "from otwamp.keys.source import Credentials; from otwamp.wire.registry import TwampMode; "
        "c = Credentials(os.urandom(16) + bytes(64), os.urandom(32), 'ikev2', 'fabricated'); "
        f"print(int(raw_set_up(({B!r}, 862), c, TwampMode.AUTHENTICATED, 0x80).start.accept))"
    )
    result = subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        cwd=Path(__file__).parents[2],
    )
    return int(result.stdout)


def test_strongswan_keys_end_to_end(hosts, tmp_path):
    ns_a, ns_b = hosts
    charon_a = _charon(ns_a, tmp_path / "charon-a", A, B, initiator=True)
    charon_b = _charon(ns_b, tmp_path / "charon-b", B, "%any", initiator=False)
    server = None
    charons: list[Charon] = []
    try:
        for charon in (charon_b, charon_a):
            charon.start()
            charons.append(charon)
        server = Logged(
            ["ip", "netns", "exec", ns_b, *otwamp_command(), "server", "--listen", B,
             "--owamp-listen", B, "--test-ports", "20000-20019", "--modes",
             "authenticated,encrypted", "--strongswan-ha", HA[1]],
            tmp_path / "server.log",
        )  # fmt: skip
        server.wait_for("listening for OWAMP-Control on")
        server.wait_for("listening for strongSwan HA messages on 127.0.0.2:4510")
        charon_a.swanctl("--initiate", "--ike", "ippm")
        spi_i, spi_r = _charon_spis(charon_b)
        server.wait_for(f"strongSwan IKE SA SPIi={spi_i} SPIr={spi_r} established")

        for mode in ("authenticated", "encrypted"):
            document = _ping(ns_a, "-A", mode)
            assert document["mode"] == mode
            assert document["ike_sa"] == {"spi_i": spi_i, "spi_r": spi_r}
        owping = _cli(ns_a, "owping", B, "-c", str(COUNT), "-i", "0.01", "--wait", "0.5",
                      "--json", "-A", "encrypted", *KEY_SOURCE)  # fmt: skip
        assert owping.returncode == 0, owping.stderr
        both = json.loads(owping.stdout)
        assert (both["mode"], both["key_source"]) == ("encrypted", "ikev2-strongswan")
        assert both["ike_sa"] == {"spi_i": spi_i, "spi_r": spi_r}
        for direction in ("to", "from"):
            packets = both[direction]["packets"]
            assert (packets["sent"], packets["received"], packets["lost"]) == (COUNT, COUNT, 0)

        assert _accept_for_fabricated_spis(ns_a) == 6

        # A rekey during a session leaves it alone (D5); the next one uses the new SA.
        client_log = tmp_path / "long-ping.log"
        with client_log.open("w") as stderr, subprocess.Popen(
            ["ip", "netns", "exec", ns_a, *otwamp_command(), "ping", B, "-c", "150", "-i",
             "0.01", "--json", "-v", "-A", "encrypted", *KEY_SOURCE],
            stdout=subprocess.PIPE, stderr=stderr, text=True,
        ) as long_ping:  # fmt: skip
            wait_until(lambda: " established" in client_log.read_text(), "the client's SA")
            time.sleep(0.5)  # the control connection is set up: its key is pinned (D5)
            charon_b.swanctl("--rekey", "--ike", "ippm")
            out, _ = long_ping.communicate(timeout=60)
        assert long_ping.returncode == 0, client_log.read_text()
        assert json.loads(out)["ike_sa"] == {"spi_i": spi_i, "spi_r": spi_r}
        new_spis = _charon_spis(charon_b)
        assert new_spis != (spi_i, spi_r)
        server.wait_for(f"strongSwan IKE SA SPIi={spi_i} SPIr={spi_r} deleted")
        assert _ping(ns_a, "-A", "authenticated")["ike_sa"] == dict(
            zip(("spi_i", "spi_r"), new_spis, strict=True)
        )

        # After a delete there is no SA: the client says so in one line.
        charon_a.swanctl("--terminate", "--ike", "ippm")
        server.wait_for(f"strongSwan IKE SA SPIi={new_spis[0]} SPIr={new_spis[1]} deleted")
        gone = _cli(ns_a, "ping", B, "-c", "1", "-A", "authenticated", *KEY_SOURCE)
        assert gone.returncode == 1
        assert gone.stderr.strip().splitlines()[-1] == (
            f"otwamp: no IKE SA with {B} (key source ikev2-strongswan, policy require)"
        )
        log = server.log()
        assert "Traceback" not in log
        for sk_d in charon_b.sk_d():
            assert sk_d.hex() not in log
    finally:
        if server is not None:
            server.stop()
        for charon in charons:
            charon.stop()
