"""tshark reads the TWAMP extensions' packets where it knows their fields (RFC 5938, 6038, 7750).

One ``otwamp ping --start-n --reflect-octets 4 --dscp EF`` against ``otwamp
server --twamp-extensions all`` over 127.0.0.1 and ::1, captured on ``lo``.
Wireshark 4.0's packet-twamp.c knows none of the three RFCs' own fields, so
what it can check is checked and the rest is read from the octets:

- twamp.control.modes / .mode: the Modes words (bits 4, 5, 6 and 8) as numbers;
- twamp.test: both directions are 48 octets (Symmetrical Size) and dissect with
  no expert warning; tshark takes both for reflector packets by their length.
  Of a reply it decodes the Sender TTL; the S-DSCP-ECN octet (RFC 7750) is the
  first octet of what it calls Packet Padding, and must equal the DS field
  tshark shows in the IP header of the sender's packet; the reflected octets
  (RFC 6038) follow the 44-octet header and equal the sender's octets after
  its 28 MBZ octets (RFC 7750 Figure 4);
- Start-N-Sessions and its acknowledgements are not in its command table: it
  names them by position ("Accept Session, (Error: 7)"...), which is recorded
  here rather than hidden, and raises no expert warning for them.
"""

import json
from pathlib import Path

import pytest

from tests.e2e.tshark_support import TSHARK_MARKS, check_no_expert_warnings, ip_layer
from tests.e2e.tshark_support import run_tshark as tshark

pytestmark = [*TSHARK_MARKS, pytest.mark.timeout(120)]

EXTENSIONS = 1 | 16 | 32 | 64 | 256  # open, RFC 5938, RFC 6038 (2 bits), RFC 7750
EF = 46 << 2  # the DS field of DSCP EF, Not-ECT


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_tshark_dissects_the_extended_exchange(
    host, tmp_path: Path, twamp_server_factory, tcpdump_capture, run_ping
):
    with twamp_server_factory(host, extra_args=["--twamp-extensions", "all"]) as server:
        low, high = server.test_ports
        bpf = f"tcp port {server.port} or udp portrange {low}-{high}"
        with tcpdump_capture(tmp_path / "ext.pcap", bpf) as pcap:
            args = ["-c", "4", "-i", "0.02", "--wait", "1", "--dscp", "EF"]
            result = run_ping([server.target, *args, "--start-n", "--reflect-octets", "4"])
        assert result.returncode == 0, result.stderr + server.log()

    def run(*more: str):
        return tshark(pcap, f"tcp.port=={server.port},twamp.control", *more)

    check_no_expert_warnings(run)
    frames = [packet["_source"]["layers"] for packet in json.loads(run("-T", "json").stdout)]
    control = [f["twamp.control"] for f in frames if "twamp.control" in f]
    assert int(control[0]["twamp.control.modes"]) == EXTENSIONS  # Server-Greeting
    assert int(control[1]["twamp.control.mode"]) == EXTENSIONS  # Set-Up-Response

    # tshark's names for Start-N-Sessions (7), Start-N-Ack (8), Stop-N (9), Stop-N-Ack (10)
    info = run("-Y", "twamp.control", "-T", "fields", "-e", "_ws.col.Info").stdout.split("\n")
    assert [line for line in info if "Error:" in line] == [
        f"Accept Session, (Error: {number})" for number in (7, 8, 9, 10)
    ]

    tests = [f for f in frames if "twamp.test" in f]
    replies = [f for f in tests if low <= int(f["udp"]["udp.srcport"]) <= high]
    sent = [f for f in tests if f not in replies]
    assert len(sent) == len(replies) == 4
    for request, reply in zip(sent, replies, strict=True):
        assert int(request["udp"]["udp.length"]) == int(reply["udp"]["udp.length"]) == 8 + 48
        ds_field = int(ip_layer(request).get("ip.dsfield") or ip_layer(request)["ipv6.tclass"], 16)
        assert ds_field == EF
        test = reply["twamp.test"]
        assert int(test["twamp.test.sender_ttl"]) == 255
        padding = bytes.fromhex(test["twamp.test.padding"].replace(":", ""))
        assert padding[0] == ds_field  # S-DSCP-ECN, RFC 7750 §2.2.1
        sent_octets = bytes.fromhex(request["udp"]["udp.payload"].replace(":", ""))
        assert sent_octets[14:42] == bytes(28)  # Symmetrical Size MBZ, RFC 7750 Figure 4
        assert padding[3:7] == sent_octets[42:46]  # the reflected octets, RFC 6038 §5.2.1
