"""What the tshark tests share: the skip marks, running tshark, and reading its JSON.

Import as ``from tests.e2e.tshark_support import ...`` (the suite runs with
``--import-mode=importlib``).
"""

import calendar
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

# ``pytestmark`` of every module that captures with tcpdump and dissects with tshark.
TSHARK_MARKS = [
    pytest.mark.tshark,
    pytest.mark.skipif(
        shutil.which("tshark") is None or shutil.which("tcpdump") is None,
        reason="needs tshark and tcpdump (scripts/install-debian-deps.sh installs them)",
    ),
]

_TIME = re.compile(r"(\w{3}) +(\d{1,2}), (\d{4}) (\d\d):(\d\d):(\d\d)\.(\d{9}) UTC")
_MONTHS = {name: number for number, name in enumerate(calendar.month_abbr) if name}

Layers = dict[str, Any]
Tshark = Callable[..., subprocess.CompletedProcess[str]]


def run_tshark(pcap: Path, decode_as: str, *args: str) -> subprocess.CompletedProcess[str]:
    """tshark on ``pcap`` with one ``-d`` Decode-As rule, in UTC and the C locale."""
    result = subprocess.run(
        ["tshark", "-n", "-r", str(pcap), "-d", decode_as, *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "TZ": "UTC", "LC_ALL": "C"},
    )
    assert result.returncode == 0, f"tshark {' '.join(args)} failed:\n{result.stderr}"
    return result


def check_no_expert_warnings(tshark: Tshark) -> None:
    """No malformed packet or expert warning, while tshark does report expert chats."""
    flagged = tshark(
        "-Y",
        "_ws.malformed || _ws.expert.severity >= warning",
        "-T",
        "fields",
        "-e",
        "frame.number",
        "-e",
        "_ws.col.Protocol",
        "-e",
        "_ws.expert.message",
    )
    assert flagged.stdout.strip() == "", f"tshark flags:\n{flagged.stdout}"
    # The same filter machinery does see expert items: the TCP handshake's chats.
    chats = tshark("-Y", "_ws.expert.severity >= chat", "-T", "fields", "-e", "frame.number")
    assert chats.stdout.split(), "tshark reported no expert items at all"

    expert = tshark("-q", "-z", "expert")
    sections = dict(re.findall(r"^(\w+) \((\d+)\)\s*$", expert.stdout, re.MULTILINE))
    assert "Chats" in sections, expert.stdout
    assert not {"Errors", "Warns", "Warnings"} & sections.keys(), expert.stdout


def time_ns(text: str) -> int:
    """A tshark absolute time (printed with TZ=UTC) as nanoseconds since 1970."""
    match = _TIME.fullmatch(text)
    assert match, f"not a tshark UTC time: {text!r}"
    month, day, year, hour, minute, second, fraction = match.groups()
    seconds = calendar.timegm(
        (int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second), 0, 0, 0)
    )
    return seconds * 1_000_000_000 + int(fraction)


def frame_ns(layers: Layers) -> int:
    return int(Decimal(layers["frame"]["frame.time_epoch"]) * 1_000_000_000)


def ip_layer(layers: Layers) -> dict[str, Any]:
    return layers["ipv6"] if "ipv6" in layers else layers["ip"]


def error_estimate(
    test: dict[str, Any], prefix: str = "twamp.test.error_estimate"
) -> dict[str, int]:
    tree = test[f"{prefix}_tree"]
    return {
        part: int(tree[f"twamp.test.error_estimate.{part}"])
        for part in ("s", "z", "scale", "multiplier")
    }
