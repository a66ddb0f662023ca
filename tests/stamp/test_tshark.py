"""Wireshark reads our STAMP packets: captured with tcpdump, dissected by tshark.

tshark 4.0 (Debian 12) has no STAMP dissector: ``tshark -G protocols`` lists
only ``twamp.control`` and ``twamp.test`` (Wireshark's STAMP dissector came
later). Unauthenticated STAMP is TWAMP-Test on the wire (RFC 8762 §4.6), so
the packets are decoded with ``-d udp.port==PORT,twamp.test``, which picks
the layout by length: every STAMP packet is 44 octets or more, so both
directions are shown with the §4.2.1 reflector fields. The reflected
packets' fields are checked; for the sender's, the fields both formats
share (Sequence Number, Timestamp, Error Estimate). The SSID sits where
TWAMP has MBZ (``twamp.test.mbz1``) and the TLVs are Packet Padding to it.
"""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.processes import run_cli
from tests.e2e.tshark_support import TSHARK_MARKS, run_tshark
from tests.stamp.stamp_support import ALL_TLVS, running_reflector

pytestmark = TSHARK_MARKS

COUNT = 5


def _capture(pcap: Path, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            "tcpdump",
            "-i",
            "lo",
            "-n",
            "--immediate-mode",
            "-U",
            "-w",
            str(pcap),
            f"udp port {port}",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_tshark_has_no_stamp_dissector() -> None:
    """Why we decode as twamp.test: recorded, and re-checked when tshark is upgraded."""
    protocols = subprocess.run(
        ["tshark", "-G", "protocols"], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    filters = {line.split("\t")[-1] for line in protocols if line}
    assert "twamp.test" in filters
    if "stamp" in filters:
        pytest.skip("this tshark knows STAMP: decode with -d udp.port==PORT,stamp instead")


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_tshark_dissects_stamp(tmp_path: Path, host: str) -> None:
    assert shutil.which("tcpdump")
    pcap = tmp_path / "stamp.pcap"
    with running_reflector(host) as reflector:
        capture = _capture(pcap, reflector.port)
        try:
            assert capture.stderr is not None
            capture.stderr.readline()  # "listening on lo ..."
            result = run_cli(
                "stamp",
                reflector.target,
                "-c",
                str(COUNT),
                "-i",
                "0.01",
                "--raw",
                "--json",
                "--tlv",
                ALL_TLVS,
                "--ssid",
                "4660",
            )
            assert result.returncode == 0, result.stderr
        finally:
            subprocess.run(["sleep", "0.5"], check=True)
            capture.send_signal(2)
            capture.wait(10)
    raw = [json.loads(line) for line in result.stdout.splitlines()]
    decode = f"udp.port=={reflector.port},twamp.test"
    flagged = run_tshark(pcap, decode, "-Y", "_ws.malformed || _ws.expert.severity >= warning")
    assert flagged.stdout.strip() == "", flagged.stdout
    expert = run_tshark(pcap, decode, "-q", "-z", "expert")
    assert "Warn" not in expert.stdout and "Error" not in expert.stdout, expert.stdout
    dissected = json.loads(run_tshark(pcap, decode, "-T", "json").stdout)
    layers = [packet["_source"]["layers"] for packet in dissected]
    assert len(layers) == 2 * COUNT and all("twamp.test" in layer for layer in layers)
    replies = [layer for layer in layers if int(layer["udp"]["udp.srcport"]) == reflector.port]
    assert len(replies) == COUNT
    for layer, record in zip(replies, raw, strict=True):
        test = layer["twamp.test"]
        assert int(test["twamp.test.sender_seq_number"]) == record["seq"]
        assert int(test["twamp.test.seq_number"]) == record["reflector_seq"]
        assert int(test["twamp.test.sender_ttl"]) == record["sender_ttl"]
        assert int(test["twamp.test.mbz1"], 0) == 4660  # the SSID where TWAMP has MBZ
    requests = [layer for layer in layers if int(layer["udp"]["udp.dstport"]) == reflector.port]
    assert [int(layer["twamp.test"]["twamp.test.seq_number"]) for layer in requests] == list(
        range(COUNT)
    )
