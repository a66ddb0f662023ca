"""O/TWAMP in and beside a strongSwan ESP tunnel: RFC 7717 §1 and §5.4 (issue 14, docs/IPSEC.md).

Network namespaces ipsA and ipsB are two IPsec gateways joined by a veth (the underlay
192.0.2.0/24), each running charon with the shipped deploy/strongswan/ configurations: the
tunnel of tunnel-{a,b}.swanctl.conf between the inner addresses 198.51.100.1 and 203.0.113.1
through kernel-libipsec's TUN device ipsec0 (tunnel.conf), and the HA plugin that keys otwamp.
(a) TWAMP to B's inner address in open mode crosses the veth as ESP in UDP 4500 only, with
the CHILD_SA's SPIs and no non-ESP marker (IKE of the same SA may pass too, with the marker):
tshark sees no O/TWAMP there. (b) TWAMP and OWAMP to
B's underlay address bypass the tunnel (tshark sees TWAMP) in authenticated and encrypted mode,
keyed by the tunnel's IKE SA: the SPIs in the reports are those of ``swanctl --list-sas``.
"""

import contextlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.ike_support import Logged
from tests.e2e.processes import otwamp_command
from tests.e2e.tshark_support import TSHARK_MARKS, run_tshark
from tests.ike.interop.charon import CHARON, Charon, Connection, run_in
from tests.keys.strongswan_ha_support import ha_charon, namespace

pytestmark = [
    pytest.mark.netns,
    *TSHARK_MARKS,
    pytest.mark.skipif(
        os.geteuid() != 0 or not shutil.which("ip") or not Path(CHARON).exists(),
        reason="needs root, ip netns and charon-systemd (scripts/install-debian-deps.sh)",
    ),
]

DEPLOY = Path(__file__).parents[2] / "deploy" / "strongswan"
UNDERLAY = {"a": "192.0.2.1", "b": "192.0.2.2"}  # as in deploy/strongswan/tunnel-*.swanctl.conf
INNER = {"a": "198.51.100.1", "b": "203.0.113.1"}
VETH = {"a": "ips-a0", "b": "ips-b0"}
HA = ("127.0.0.1", "127.0.0.2")  # deploy/strongswan/ha-keys.conf: ha.local, ha.remote
KEY_SOURCE = ["--key-source", "strongswan", "--strongswan-ha", HA[1], "--strongswan-resync"]
TUNNEL_PORTS, UNDERLAY_PORTS = (20000, 20009), (20010, 20019)
COUNT = 50


@dataclass
class Gateway:
    """One namespace with its charon."""

    netns: str
    charon: Charon

    def measure(self, command: str, host: str, mode: str, *args: str) -> dict[str, Any]:
        """``otwamp COMMAND HOST`` in this namespace: COUNT packets in ``mode``, its JSON report."""
        result = subprocess.run(
            ["ip", "netns", "exec", self.netns, *otwamp_command(), command, host, "-c",
             str(COUNT), "-i", "0.01", "--wait", "0.5", "-A", mode, "--json", *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        document: dict[str, Any] = json.loads(result.stdout)
        assert document["mode"] == mode
        return document


@dataclass(frozen=True)
class Sas:
    """What ``swanctl --list-sas`` says: the IKE SA's SPIs and its CHILD_SA's in and out SPIs."""

    ike: dict[str, str]
    child_in: str
    child_out: str


def _tunnel_charon(netns: str, directory: Path, side: str) -> Charon:
    """The tests' HA charon, configured as the deploy/strongswan/ gateway ``side``."""
    other = "b" if side == "a" else "a"  # the connection's swanctl.conf is replaced below
    connection = Connection(f"{side}.ippm.test", f"{other}.ippm.test", "", 500, side == "a")
    charon = ha_charon(netns, directory, connection, HA)
    conf = directory / "strongswan.conf"
    text = conf.read_text().replace(" kernel-netlink ", " kernel-libipsec kernel-netlink ", 1)
    conf.write_text(f"{text}include {DEPLOY / 'tunnel.conf'}\n")
    shutil.copy(DEPLOY / f"tunnel-{side}.swanctl.conf", directory / "swanctl" / "swanctl.conf")
    return charon


@pytest.fixture
def gateways(tmp_path: Path) -> Iterator[dict[str, Gateway]]:
    """ipsA and ipsB joined by a veth, charon in both; charons stopped, namespaces deleted."""
    with contextlib.ExitStack() as stack:
        names = {
            side: stack.enter_context(namespace(f"ips{side.upper()}{os.getpid()}")) for side in "ab"
        }
        subprocess.run(
            ["ip", "link", "add", VETH["a"], "netns", names["a"], "type", "veth",
             "peer", VETH["b"], "netns", names["b"]],
            check=True,
        )  # fmt: skip
        found = {}
        for side, netns in names.items():
            run_in(netns, "ip", "addr", "add", f"{UNDERLAY[side]}/24", "dev", VETH[side])
            run_in(netns, "ip", "addr", "add", f"{INNER[side]}/32", "dev", "lo")
            run_in(netns, "ip", "link", "set", VETH[side], "up")
            found[side] = Gateway(netns, _tunnel_charon(netns, tmp_path / f"charon-{side}", side))
        for side in "ba":
            found[side].charon.start()
            stack.callback(found[side].charon.stop)
        yield found


def _sas(charon: Charon) -> Sas:
    listing = charon.swanctl("--list-sas")
    ike = re.search(r"\b([0-9a-f]{16})_i\*? ([0-9a-f]{16})_r\*?", listing)
    child_in = re.search(r"\bin +([0-9a-f]{8}),", listing)
    child_out = re.search(r"\bout +([0-9a-f]{8}),", listing)
    assert ike and child_in and child_out, listing
    return Sas(dict(spi_i=ike[1], spi_r=ike[2]), child_in[1], child_out[1])


def _no_loss(packets: dict[str, int]) -> None:
    assert (packets["sent"], packets["received"], packets["lost"]) == (COUNT, COUNT, 0)


def _frames(pcap: Path, decode_as: str) -> list[list[str]]:
    """Per frame: protocols, source, destination, UDP ports, ESP SPI, IKE SPIi, UDP payload."""
    fields = ("frame.protocols", "ip.src", "ip.dst", "udp.srcport", "udp.dstport", "esp.spi",
              "isakmp.ispi")  # fmt: skip
    selected = [arg for field in (*fields, "udp.payload") for arg in ("-e", field)]
    listing = run_tshark(pcap, decode_as, "-T", "fields", "-E", "occurrence=f", *selected).stdout
    return [line.split("\t") for line in listing.splitlines()]


def test_twamp_in_and_beside_the_tunnel(
    gateways: dict[str, Gateway],
    tmp_path: Path,
    tcpdump_capture: Callable[..., contextlib.AbstractContextManager[Path]],
) -> None:
    a, b = gateways["a"], gateways["b"]
    servers: list[Logged] = []
    try:
        for name, listen, owamp, modes, ports, extra in (
            ("tunnel", INNER["b"], "off", "open", TUNNEL_PORTS, []),
            ("underlay", UNDERLAY["b"], UNDERLAY["b"], "authenticated,encrypted", UNDERLAY_PORTS,
             ["--strongswan-ha", HA[1]]),
        ):  # fmt: skip
            server = Logged(
                ["ip", "netns", "exec", b.netns, *otwamp_command(), "server", "--listen", listen,
                 "--owamp-listen", owamp, "--modes", modes, "--test-ports",
                 f"{ports[0]}-{ports[1]}", *extra],
                tmp_path / f"server-{name}.log",
            )  # fmt: skip
            servers.append(server)
            server.wait_for(f"listening for TWAMP-Control on {listen}:862")
        servers[1].wait_for("listening for strongSwan HA messages on 127.0.0.2:4510")

        a.charon.swanctl("--initiate", "--child", "ippm-tunnel")
        sas = _sas(a.charon)
        assert _sas(b.charon).ike == sas.ike
        for gateway, side in ((a, "b"), (b, "a")):  # kernel-libipsec's TUN device and route
            route = run_in(gateway.netns, "ip", "route", "get", INNER[side])
            assert " dev ipsec0 " in route, route
        ike = f"SPIi={sas.ike['spi_i']} SPIr={sas.ike['spi_r']}"
        servers[1].wait_for(f"strongSwan IKE SA {ike} established")

        # (a) In the tunnel, open mode: the veth carries ESP in UDP 4500 and nothing else.
        pcap = tmp_path / "tunnel.pcap"
        with tcpdump_capture(pcap, "ip", VETH["a"], a.netns):
            tunnel = a.measure("ping", INNER["b"], "open")
        assert tunnel["key_source"] == "none"
        _no_loss(tunnel["packets"])
        assert f"reflecting for {INNER['a']}:" in servers[0].log()  # between the inner addresses
        frames = _frames(pcap, "udp.port==4500,udpencap")
        assert frames, "nothing captured on the veth"
        spis = {
            (UNDERLAY["a"], UNDERLAY["b"]): sas.child_out,
            (UNDERLAY["b"], UNDERLAY["a"]): sas.child_in,
        }
        esp = {direction: 0 for direction in spis}
        for protocols, src, dst, sport, dport, spi, ike_spi, payload in frames:
            assert (sport, dport) == ("4500", "4500"), protocols  # no TCP, no TWAMP-Test
            if protocols.endswith(":ip:udp:udpencap:isakmp"):  # a retransmission, a DPD...
                assert payload[:8] == "00000000"  # IKE has the non-ESP marker (RFC 3948 §2.2)
                assert ike_spi == sas.ike["spi_i"]
                continue
            assert protocols.endswith(":ip:udp:udpencap:esp"), protocols
            assert payload[:8] != "00000000"  # no non-ESP marker: an SPI (RFC 3948 §2.2)
            assert int(spi, 16) == int(spis[src, dst], 16) == int(payload[:8], 16)
            esp[src, dst] += 1
        assert min(esp.values()) >= COUNT, esp  # each test packet and its reflection

        # (b) Bypassing it, keyed by its IKE SA through each charon's HA plugin.
        pcap = tmp_path / "underlay.pcap"
        with tcpdump_capture(pcap, "ip", VETH["a"], a.netns):
            underlay = a.measure("ping", UNDERLAY["b"], "authenticated", *KEY_SOURCE)
        assert underlay["key_source"] == "ikev2-strongswan"
        _no_loss(underlay["packets"])
        assert underlay["ike_sa"] == sas.ike == _sas(a.charon).ike == _sas(b.charon).ike
        ports = f"udp.port=={UNDERLAY_PORTS[0]}-{UNDERLAY_PORTS[1]},twamp.test"
        test_frames = [f for f in _frames(pcap, ports) if f[0].endswith(":udp:twamp.test")]
        assert len(test_frames) == 2 * COUNT  # plain TWAMP-Test on the veth, no ESP around it
        owping = a.measure("owping", UNDERLAY["b"], "encrypted", *KEY_SOURCE)
        assert (owping["key_source"], owping["ike_sa"]) == ("ikev2-strongswan", sas.ike)
        for direction in ("to", "from"):
            _no_loss(owping[direction]["packets"])

        log = servers[1].log()
        assert "Traceback" not in log
        for sk_d in b.charon.sk_d():
            assert sk_d.hex() not in log
    finally:
        for server in servers:
            server.stop()
