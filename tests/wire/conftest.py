"""The perfSONAR TWAMP transcripts (../shared/vectors/perfsonar) for the wire tests.

A small loader of our own: each transcript's control messages and test
packets with their recorded wire octets, plaintext (modes A, E and M) and
decoded ``fields``. The recorded fields are the expected values; the codecs
under test only ever see the recorded octets.
"""

import ipaddress
from dataclasses import dataclass
from typing import Any

from tests.vectors import CLIENT_TO_SERVER, load_vector

OPEN_TWAMP = ("twamp-O", "twamp-O-pad0")
SECURED_TWAMP = ("twamp-A", "twamp-A-pad0", "twamp-E", "twamp-E-pad0", "twamp-M", "twamp-M-pad0")
ALL_TWAMP = OPEN_TWAMP + SECURED_TWAMP
# Modes A and E protect test packets; mixed mode (RFC 5618 §3.2) sends them open.
AUTH_TEST = ("twamp-A", "twamp-A-pad0", "twamp-E", "twamp-E-pad0")

SENDER_TO_REFLECTOR = "sender->reflector"


@dataclass(frozen=True)
class ControlMessage:
    """One recorded control message."""

    vector: str
    index: int
    direction: str
    name: str
    wire: bytes
    plaintext: bytes  # the wire octets in open mode, the decrypted ones otherwise
    fields: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.vector}-{self.index}-{self.name}"

    @property
    def body(self) -> bytes:
        """The plaintext without the trailing 16-octet HMAC (what the codecs encode)."""
        return self.plaintext[:-16]

    @property
    def hmac(self) -> bytes:
        return self.plaintext[-16:]


@dataclass(frozen=True)
class RecordedPacket:
    """One recorded TWAMP-Test packet."""

    vector: str
    index: int
    direction: str
    payload: bytes
    plaintext: bytes  # decrypted for modes A and E, else the payload
    authenticated: bool
    fields: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.vector}-{self.index}-{self.direction.split('->')[0]}"

    @property
    def from_sender(self) -> bool:
        return self.direction == SENDER_TO_REFLECTOR


def control_messages(name: str) -> list[ControlMessage]:
    """Every control message of one transcript, in time order."""
    out = []
    for i, m in enumerate(load_vector(name)["control"]["messages"]):
        wire = bytes.fromhex(m["wire_hex"])
        plain = bytes.fromhex(m["plaintext_hex"]) if "plaintext_hex" in m else wire
        out.append(ControlMessage(name, i, m["dir"], m["name"], wire, plain, m["fields"]))
    return out


def recorded_packets(name: str) -> list[RecordedPacket]:
    """Every test packet of one transcript, in capture order."""
    out = []
    for i, p in enumerate(load_vector(name)["test_packets"]):
        payload = bytes.fromhex(p["payload_hex"])
        plain = bytes.fromhex(p["plaintext_hex"]) if "plaintext_hex" in p else payload
        out.append(
            RecordedPacket(name, i, p["direction"], payload, plain, name in AUTH_TEST, p["fields"])
        )
    return out


def all_control_messages(names: tuple[str, ...]) -> list[ControlMessage]:
    return [m for name in names for m in control_messages(name)]


def all_test_packets(names: tuple[str, ...]) -> list[RecordedPacket]:
    return [p for name in names for p in recorded_packets(name)]


def message_fields(name: str, message: str) -> dict[str, Any]:
    """The recorded fields of the first message called ``message``."""
    for m in control_messages(name):
        if m.name == message:
            return m.fields
    raise KeyError(message)


def stream(name: str, direction: str, plaintext: bool = False) -> bytes:
    """The whole recorded TCP payload of one direction (wire or decrypted)."""
    prefix = "client_to_server" if direction == CLIENT_TO_SERVER else "server_to_client"
    key = f"{prefix}_plaintext_hex" if plaintext else f"{prefix}_hex"
    value = load_vector(name)["control"][key]
    if value is None:
        value = load_vector(name)["control"][f"{prefix}_hex"]
    return bytes.fromhex(value)


def ee(field: dict[str, Any]) -> int:
    """A recorded Error Estimate field as its 16-bit value (checked against its parts)."""
    value = int(field["hex"], 16)
    parts = (field["S"] << 15) | (field["Z"] << 14) | (field["scale"] << 8) | field["multiplier"]
    assert value == parts
    return value


def address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)
