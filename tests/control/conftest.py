"""Helpers for driving the TWAMP-Control machines with the perfSONAR transcripts.

The transcripts are loaded by ``tests.wire.conftest``; here they become the
values a driver would answer with (the recorded fields) and the channels a
secured mode needs, keyed from the vector's ``derived_for_checking`` session
keys and the recorded IVs.
"""

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from otwamp.control.events import NeedData
from otwamp.control.twamp_client import TwampClientConnection
from otwamp.control.twamp_server import TwampServerConnection
from otwamp.security.control import (
    ControlReceiver,
    SecureControlReceiver,
    SecureControlSender,
)
from otwamp.security.sessionkeys import SessionKeys
from otwamp.wire.setup import ServerGreeting, ServerStart, SetUpResponse, encode_key_id
from otwamp.wire.twamp_control import AcceptSession, RequestTwSession, StartAck, StopSessions
from tests.vectors import CLIENT_TO_SERVER, SERVER_TO_CLIENT, load_vector, ts
from tests.wire.conftest import address, message_fields, stream

__all__ = ["CLIENT_TO_SERVER", "SERVER_TO_CLIENT", "Recorded", "drain", "split"]


# Values shared by the TWAMP-Control machine tests of both sides.
KEYS = SessionKeys(aes_key=bytes(range(16)), hmac_key=bytes(range(100, 132)))
CLIENT_IV = bytes(range(0x30, 0x40))
SERVER_IV = bytes(range(0x50, 0x60))
START_TIME = 0xEEACD8EB232FCAC8
REQUEST = RequestTwSession(
    sender_address=ipaddress.IPv4Address("127.0.0.1"),
    receiver_address=ipaddress.IPv4Address("127.0.0.1"),
    sender_port=9098,
    receiver_port=9098,
    padding_length=27,
    start_time=0xEEACD948A845DC83,
    timeout=0x00000002000A06EA,
)
SID = bytes.fromhex("7f000001eeacd947a841893771f2517f")


@dataclass(frozen=True)
class Recorded:
    """A transcript's messages as the values our machines are given or should produce."""

    name: str

    @property
    def secured(self) -> bool:
        return load_vector(self.name)["derived_for_checking"] is not None

    @property
    def keys(self) -> SessionKeys:
        derived = load_vector(self.name)["derived_for_checking"]
        return SessionKeys(
            bytes.fromhex(derived["aes_session_key"]), bytes.fromhex(derived["hmac_session_key"])
        )

    def stream(self, direction: str) -> bytes:
        return stream(self.name, direction)

    def greeting(self) -> ServerGreeting:
        f = message_fields(self.name, "Server-Greeting")
        return ServerGreeting(
            f["modes"], bytes.fromhex(f["challenge"]), bytes.fromhex(f["salt"]), f["count"]
        )

    def setup(self) -> SetUpResponse:
        f = message_fields(self.name, "Set-Up-Response")
        key_id = encode_key_id(f["keyid_text"]) if f["keyid_text"] else bytes(80)
        return SetUpResponse(
            f["mode"], key_id, bytes.fromhex(f["token"]), bytes.fromhex(f["client_iv"])
        )

    def server_start(self) -> ServerStart:
        f = message_fields(self.name, "Server-Start")
        return ServerStart(f["accept"], bytes.fromhex(f["server_iv"]), ts(f["start_time"]))

    def request(self) -> RequestTwSession:
        f = message_fields(self.name, "Request-TW-Session")
        return RequestTwSession(
            sender_address=address(f["sender_address"]),
            receiver_address=address(f["receiver_address"]),
            sender_port=f["sender_port"],
            receiver_port=f["receiver_port"],
            padding_length=f["padding_length"],
            start_time=ts(f["start_time"]),
            timeout=ts(f["timeout"]),
            type_p=int(f["type_p_descriptor"], 16),
            conf_sender=f["conf_sender"],
            conf_receiver=f["conf_receiver"],
            num_slots=f["num_schedule_slots"],
            num_packets=f["num_packets"],
            sid=bytes.fromhex(f["sid"]),
        )

    def accept(self) -> AcceptSession:
        f = message_fields(self.name, "Accept-Session")
        return AcceptSession(f["accept"], f["port"], bytes.fromhex(f["sid"]))

    def start_ack(self) -> StartAck:
        return StartAck(message_fields(self.name, "Start-Ack")["accept"])

    def stop(self) -> StopSessions:
        f = message_fields(self.name, "Stop-Sessions")
        return StopSessions(f["accept"], f["number_of_sessions"])

    def server_channels(self) -> tuple[SecureControlSender | None, SecureControlReceiver | None]:
        """The server's (tx, rx): Server-IV out, Client-IV in (RFC 4656 §3.4)."""
        if not self.secured:
            return None, None
        return (
            SecureControlSender(self.keys, self.server_start().server_iv),
            SecureControlReceiver(self.keys, self.setup().client_iv),
        )

    def client_channels(
        self,
    ) -> tuple[SecureControlSender | None, Callable[[bytes], ControlReceiver] | None]:
        """The client's tx (Client-IV) and a receiver factory taking the Server-IV."""
        if not self.secured:
            return None, None
        keys = self.keys
        return SecureControlSender(keys, self.setup().client_iv), lambda iv: SecureControlReceiver(
            keys, iv
        )


def split(data: bytes, sizes: list[int]) -> list[bytes]:
    """``data`` cut into chunks of the given sizes, the rest in one last chunk."""
    chunks, at = [], 0
    for size in sizes:
        if at >= len(data):
            break
        chunks.append(data[at : at + size])
        at += size
    if at < len(data):
        chunks.append(data[at:])
    return chunks


def drain(
    machine: TwampServerConnection | TwampClientConnection, answer: Callable[[object], bytes]
) -> tuple[list[object], bytes]:
    """Pull events until NEED_DATA, answering each; the events and the octets sent."""
    events, sent = [], b""
    while True:
        event = machine.next_event()
        if isinstance(event, NeedData):
            return events, sent
        events.append(event)
        sent += answer(event)
