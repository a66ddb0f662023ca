"""The perfSONAR transcripts (../shared/vectors/perfsonar): where they are and how to read them.

Shared by the wire, security and control tests; each keeps its own typed view
of the transcripts on top of :func:`load_vector`.
"""

import json
from functools import cache
from pathlib import Path
from typing import Any

VECTORS = Path(__file__).resolve().parents[2] / "shared" / "vectors" / "perfsonar"

CLIENT_TO_SERVER = "client->server"
SERVER_TO_CLIENT = "server->client"


@cache
def load_vector(name: str) -> dict[str, Any]:
    """One transcript's JSON, parsed once per test run."""
    with (VECTORS / f"{name}.json").open(encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data


def ts(field: dict[str, Any]) -> int:
    """A recorded timestamp field as its 64-bit value (checked against its parts)."""
    value = int(field["uint64"])
    assert value == (int(field["seconds_since_1900"]) << 32) | int(field["fraction"])
    assert value == int(field["hex"], 16)
    return value
