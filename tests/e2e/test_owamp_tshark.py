"""Wireshark's ``owamp.test`` dissector reads our open-mode OWAMP-Test packets as sent (issue 4).

A real ``otwamp server`` (OWAMP only) and one real ``otwamp owping --raw
--json`` over 127.0.0.1 and ::1, captured with tcpdump on ``lo`` and dissected
by tshark 4.0 with ``-d udp.port==LO-HI,owamp.test``: Wireshark has no
OWAMP-Control dissector to learn the test ports from, so the server's test
port range is declared, which covers both directions (the server's port is
the destination of "to" packets and the source of "from" packets).

What packet-twamp.c (4.0) decodes of an OWAMP-Test packet: Sequence Number,
Timestamp and Error Estimate, under the ``twamp.test.*`` field names inside
the ``owamp.test`` layer; the padding is not shown as a field.
"""

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.tshark_support import (
    TSHARK_MARKS,
    Layers,
    check_no_expert_warnings,
    error_estimate,
    frame_ns,
    ip_layer,
    time_ns,
)
from tests.e2e.tshark_support import run_tshark as tshark

pytestmark = TSHARK_MARKS

COUNT = 5
PADDING = 20
DSCP_EF = 46
OPEN_SENDER_OCTETS = 14 + PADDING  # RFC 4656 §4.1.2, unauthenticated mode
TIMESTAMP_SLACK_NS = 5  # NTP fraction <-> nanoseconds rounding, ours and tshark's
CAPTURE_SLACK_NS = 50_000_000  # kernel receive stamp vs tcpdump's stamp of the same packet


@dataclass
class Capture:
    """One family's capture, dissected, and what owping printed."""

    host: str
    port: int
    test_ports: tuple[int, int]
    pcap: Path
    raw: list[dict[str, Any]]
    frames: list[Layers]

    def tshark(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_tshark(self.pcap, self.test_ports, *args)

    def test_packets(self, direction: str) -> list[Layers]:
        """UDP frames towards the server ("to") or from it ("from"), in capture order."""
        low, high = self.test_ports
        key = "udp.dstport" if direction == "to" else "udp.srcport"
        return [
            layers
            for layers in self.frames
            if "udp" in layers and low <= int(layers["udp"][key]) <= high
        ]


def run_tshark(
    pcap: Path, test_ports: tuple[int, int], *args: str
) -> subprocess.CompletedProcess[str]:
    """tshark on ``pcap`` with the server's test ports declared as OWAMP-Test."""
    low, high = test_ports
    return tshark(pcap, f"udp.port=={low}-{high},owamp.test", *args)


def dscp(layers: Layers) -> int:
    ip = ip_layer(layers)
    if "ipv6" in layers:
        return int(ip["ipv6.tclass_tree"]["ipv6.tclass.dscp"])
    return int(ip["ip.dsfield_tree"]["ip.dsfield.dscp"])


def estimate_seconds(estimate: dict[str, int]) -> float:
    """RFC 4656 §4.1.2: Multiplier * 2^(-32) * 2^Scale."""
    return float(estimate["multiplier"] * 2.0 ** (estimate["scale"] - 32))


@pytest.fixture(scope="module", params=["127.0.0.1", "::1"], ids=["ipv4", "ipv6"])
def capture(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    owamp_server_factory: Callable[..., Any],
    tcpdump_capture: Callable[..., Any],
    run_owping: Callable[..., subprocess.CompletedProcess[str]],
) -> Iterator[Capture]:
    """Server, tcpdump and one ``owping --raw --json``; all stopped before use."""
    host: str = request.param
    directory = tmp_path_factory.mktemp("owamp-tshark")
    pcap = directory / "owamp.pcap"
    started = time.monotonic()
    with owamp_server_factory(host, directory, twamp=False) as server:
        low, high = server.test_ports
        bpf = f"host {host} and (tcp port {server.port} or udp portrange {low}-{high})"
        with tcpdump_capture(pcap, bpf):
            options = [
                "--wait",
                "0.3",
                "--padding",
                str(PADDING),
                "--dscp",
                "EF",
                "--raw",
                "--json",
            ]
            result = run_owping([server.target, "-c", str(COUNT), "-i", "0.01", *options])
        assert result.returncode == 0, f"{result.stderr}\nserver log:\n{server.log()}"
    raw = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    decoded = run_tshark(pcap, server.test_ports, "-T", "json", "--no-duplicate-keys")
    frames = [packet["_source"]["layers"] for packet in json.loads(decoded.stdout)]
    yield Capture(host, server.port, server.test_ports, pcap, raw, frames)
    assert time.monotonic() - started < 20, "the capture took too long"


def test_no_malformed_packets_or_expert_warnings(capture: Capture) -> None:
    check_no_expert_warnings(capture.tshark)

    udp = [layers for layers in capture.frames if "udp" in layers]
    assert len(udp) == 2 * COUNT
    for layers in udp:
        number = layers["frame"]["frame.number"]
        assert "_ws.malformed" not in layers, f"frame {number} is malformed"
        assert "owamp.test" in layers, f"UDP frame {number} is not OWAMP-Test"
        assert "twamp.test" not in layers, f"frame {number} read as TWAMP-Test"
        assert "data" not in layers, f"frame {number} has undissected data"


def test_sequence_numbers_in_both_directions(capture: Capture) -> None:
    for direction in ("to", "from"):
        packets = capture.test_packets(direction)
        seqs = [int(p["owamp.test"]["twamp.test.seq_number"]) for p in packets]
        assert seqs == list(range(COUNT)), (direction, seqs)
        for layers in packets:
            assert int(layers["udp"]["udp.length"]) - 8 == OPEN_SENDER_OCTETS
            assert dscp(layers) == DSCP_EF  # Type-P honoured by both senders (RFC 4656 §3.5)
            estimate = error_estimate(layers["owamp.test"])
            assert estimate["z"] == 0 and estimate["multiplier"] != 0  # RFC 4656 §4.1.2
    # One UDP flow each way: the client's port and the server's, never swapped.
    to_ports = {
        (p["udp"]["udp.srcport"], p["udp"]["udp.dstport"]) for p in capture.test_packets("to")
    }
    from_ports = {
        (p["udp"]["udp.srcport"], p["udp"]["udp.dstport"]) for p in capture.test_packets("from")
    }
    assert len(to_ports) == 1 and len(from_ports) == 1
    assert to_ports != {(b, a) for a, b in from_ports}  # two sessions, two client sockets


def test_timestamps_match_what_owping_reports(capture: Capture) -> None:
    # --raw prints the "to" session's records, then the "from" session's.
    assert [record["seq"] for record in capture.raw] == [*range(COUNT), *range(COUNT)]
    reports = {"to": capture.raw[:COUNT], "from": capture.raw[COUNT:]}
    for direction, records in reports.items():
        packets = {
            int(p["owamp.test"]["twamp.test.seq_number"]): p
            for p in capture.test_packets(direction)
        }
        for record in records:
            assert not record["lost"]
            layers = packets[record["seq"]]
            test = layers["owamp.test"]
            sent = time_ns(test["twamp.test.timestamp"])
            assert abs(sent - record["sent"]["ns"]) <= TIMESTAMP_SLACK_NS, (direction, record)
            estimate = error_estimate(test)
            assert bool(estimate["s"]) == record["sent"]["sync"]
            assert estimate_seconds(estimate) == pytest.approx(record["sent"]["error"], rel=1e-3)
            # The receiver's kernel stamp and tcpdump's stamp of the same packet agree.
            assert abs(record["received"]["ns"] - frame_ns(layers)) < CAPTURE_SLACK_NS
            assert sent <= frame_ns(layers) + CAPTURE_SLACK_NS
