"""The perfSONAR transcripts (../shared/vectors/perfsonar) as typed test inputs.

Everything the code under test consumes comes from the recorded wire bytes
and the decoded fields; ``derived_for_checking`` (computed by the vector
author) is only ever an expected value.
"""

from dataclasses import dataclass
from typing import Any

import pytest

from otwamp.security.kdf import derive_secret_key
from otwamp.security.sessionkeys import SessionKeys
from otwamp.security.token import open_token
from tests.vectors import CLIENT_TO_SERVER, load_vector

# Every transcript whose control connection is encrypted (modes A, E and M).
SECURED = (
    "twamp-A",
    "twamp-A-pad0",
    "twamp-E",
    "twamp-E-pad0",
    "twamp-M",
    "twamp-M-pad0",
    "owamp-A",
    "owamp-E",
)
# Those whose test packets are protected too (modes A and E; mixed mode sends them open).
PROTECTED_TEST = tuple(name for name in SECURED if "-M" not in name)
OPEN = ("twamp-O", "twamp-O-pad0", "owamp-O")


@dataclass(frozen=True)
class ControlHmac:
    """One recorded control HMAC: its value and the plaintext it covers."""

    value: bytes
    covered: bytes


@dataclass(frozen=True)
class PacketRecord:
    """One recorded protected test packet."""

    direction: str
    sid: bytes
    payload: bytes
    plaintext: bytes
    hmac: bytes


@dataclass(frozen=True)
class Direction:
    """One direction of the recorded control connection."""

    name: str
    wire: bytes
    plaintext: bytes
    encryption_start: int  # RFC 4656 §3.4: the block after the IV
    message_starts: tuple[int, ...]
    hmacs: tuple[ControlHmac, ...]


class Transcript:
    """A recorded perfSONAR run, by name (e.g. ``twamp-E``)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.data = load_vector(name)

    def __repr__(self) -> str:
        return f"Transcript({self.name!r})"

    def fields(self, name: str) -> dict[str, Any]:
        """The decoded fields of the first message called ``name``."""
        for message in self.data["control"]["messages"]:
            if message["name"] == name:
                fields: dict[str, Any] = message["fields"]
                return fields
        raise KeyError(name)

    @property
    def derived(self) -> dict[str, Any]:
        """The vector author's values, for comparison only (modes A, E and M)."""
        derived: dict[str, Any] = self.data["derived_for_checking"]
        return derived

    @property
    def mode_name(self) -> str:
        return str(self.data["mode_name"])

    @property
    def shared_secret(self) -> bytes:
        return str(self.data["pass_phrase"]).encode()

    @property
    def salt(self) -> bytes:
        return bytes.fromhex(self.fields("Server-Greeting")["salt"])

    @property
    def count(self) -> int:
        return int(self.fields("Server-Greeting")["count"])

    @property
    def challenge(self) -> bytes:
        return bytes.fromhex(self.fields("Server-Greeting")["challenge"])

    @property
    def token(self) -> bytes:
        return bytes.fromhex(self.fields("Set-Up-Response")["token"])

    @property
    def client_iv(self) -> bytes:
        return bytes.fromhex(self.fields("Set-Up-Response")["client_iv"])

    @property
    def server_iv(self) -> bytes:
        return bytes.fromhex(self.fields("Server-Start")["server_iv"])

    def direction(self, name: str) -> Direction:
        """The recorded stream sent in direction ``name``, with its messages and HMACs."""
        control = self.data["control"]
        prefix = "client_to_server" if name == CLIENT_TO_SERVER else "server_to_client"
        messages = [m for m in control["messages"] if m["dir"] == name]
        return Direction(
            name=name,
            wire=bytes.fromhex(control[f"{prefix}_hex"]),
            plaintext=bytes.fromhex(control[f"{prefix}_plaintext_hex"]),
            encryption_start=164 if name == CLIENT_TO_SERVER else 96,
            message_starts=tuple(m["stream_offset"] for m in messages),
            hmacs=tuple(
                ControlHmac(bytes.fromhex(f["value"]), bytes.fromhex(f["covered_plaintext_hex"]))
                for m in messages
                for f in m["fields"].values()
                if isinstance(f, dict) and "covered_plaintext_hex" in f
            ),
        )

    def protected_packets(self) -> list[PacketRecord]:
        """Every recorded test packet that has a decrypted form (modes A and E)."""
        return [
            PacketRecord(
                direction=p["direction"],
                sid=bytes.fromhex(p["sid"]),
                payload=bytes.fromhex(p["payload_hex"]),
                plaintext=bytes.fromhex(p["plaintext_hex"]),
                hmac=bytes.fromhex(p["hmac"]["value"]),
            )
            for p in self.data["test_packets"]
            if "plaintext_hex" in p
        ]


@pytest.fixture(params=SECURED)
def transcript(request: pytest.FixtureRequest) -> Transcript:
    """Each transcript with an encrypted control connection in turn (or as parametrized)."""
    return Transcript(request.param)


@pytest.fixture
def session_keys(transcript: Transcript) -> SessionKeys:
    """The control session keys, through our code from the recorded pass-phrase and Token."""
    secret_key = derive_secret_key(transcript.shared_secret, transcript.salt, transcript.count)
    return open_token(secret_key, transcript.token, transcript.challenge)
