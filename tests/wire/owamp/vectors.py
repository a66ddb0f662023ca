"""The perfSONAR OWAMP transcripts (../shared/vectors/perfsonar/owamp-*.json) for the codec tests.

The recorded ``fields`` are the expected values; the codecs only ever see
the recorded octets (the plaintext ones in modes A and E).
"""

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

VECTORS = Path(__file__).resolve().parents[4] / "shared" / "vectors" / "perfsonar"
OWAMP = ("owamp-O", "owamp-A", "owamp-E")
HMAC = 16

REQUEST = "Request-Session"
REPRODUCTION = "Fetch data: Request-Session reproduction"
SKIP_PART = "Fetch data: Skip Ranges + HMAC"
RECORD_PART = "Fetch data: packet records + HMAC"


@cache
def load(name: str) -> dict[str, Any]:
    """One transcript's JSON, parsed once."""
    with (VECTORS / f"{name}.json").open(encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data


@dataclass(frozen=True)
class Message:
    """One recorded control message: its plaintext octets and decoded fields."""

    vector: str
    index: int
    name: str
    direction: str
    plaintext: bytes
    fields: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.vector}-{self.index}-{self.name}"

    @property
    def body(self) -> bytes:
        """The plaintext without its trailing HMAC block."""
        return self.plaintext[:-HMAC]


def messages(name: str) -> list[Message]:
    """Every control message of one transcript, in time order."""
    out = []
    for i, m in enumerate(load(name)["control"]["messages"]):
        plain = bytes.fromhex(m.get("plaintext_hex") or m["wire_hex"])
        assert len(plain) == m["length"]
        out.append(Message(name, i, m["name"], m["dir"], plain, m["fields"]))
    return out


def all_named(*names: str) -> list[Message]:
    """Every message with one of ``names`` across the three OWAMP transcripts."""
    return [m for v in OWAMP for m in messages(v) if m.name in names]


def ts(field: dict[str, Any]) -> int:
    """A recorded timestamp as its 64-bit value, checked against its parts."""
    value = int(field["uint64"])
    assert value == (int(field["seconds_since_1900"]) << 32) | int(field["fraction"])
    assert value == int(field["hex"], 16)
    return value
