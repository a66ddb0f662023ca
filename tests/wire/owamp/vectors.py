"""The perfSONAR OWAMP transcripts (../shared/vectors/perfsonar/owamp-*.json) for the codec tests.

The recorded ``fields`` are the expected values; the codecs only ever see
the recorded octets (the plaintext ones in modes A and E).
"""

from dataclasses import dataclass
from typing import Any

from tests.vectors import load_vector as load

OWAMP = ("owamp-O", "owamp-A", "owamp-E")
HMAC = 16

REQUEST = "Request-Session"
REPRODUCTION = "Fetch data: Request-Session reproduction"
SKIP_PART = "Fetch data: Skip Ranges + HMAC"
RECORD_PART = "Fetch data: packet records + HMAC"


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
