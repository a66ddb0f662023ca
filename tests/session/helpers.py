"""Shared inputs of the OWAMP engine tests: keys, schedules, perfSONAR transcripts."""

from dataclasses import dataclass
from typing import Any

from otwamp.results.records import Arrival, OwampSessionRecord, Stamp
from otwamp.security.sessionkeys import SessionKeys
from otwamp.session.owamp_receiver import OwampReceiver
from otwamp.session.owamp_sender import OwampSender
from otwamp.session.protection import SessionProtection, session_protection
from otwamp.session.slots import send_times
from otwamp.wire.owamp_control import Slot, SlotType
from otwamp.wire.owamp_fetch import PacketRecord
from otwamp.wire.registry import OwampMode
from otwamp.wire.timestamp import ErrorEstimate, duration_to_ntp, ntp_to_ns
from tests.vectors import load_vector

SID = bytes.fromhex("7f000001eeacd975a1b3aeee5dc2152a")
KEYS = SessionKeys(aes_key=bytes(range(16)), hmac_key=bytes(range(32, 64)))
START = 0xEEACD976_00000000  # Start Time of the test sessions (32.32)
INTERVAL = duration_to_ntp(0.001)
TIMEOUT = duration_to_ntp(2.0)
ERROR = ErrorEstimate(sync=True, scale=0, multiplier=20)  # about 4.7 ns
MODES = {
    "open": OwampMode.UNAUTHENTICATED,
    "authenticated": OwampMode.AUTHENTICATED,
    "encrypted": OwampMode.ENCRYPTED,
}


def protection_for(mode: str, sid: bytes = SID) -> SessionProtection | None:
    """The test-packet protection of ``mode`` under KEYS."""
    return session_protection(MODES[mode], sid, KEYS)


def fixed_times(count: int) -> list[int]:
    """Scheduled send times of ``count`` packets 1 ms apart from START."""
    return list(send_times(START, [Slot(SlotType.FIXED, INTERVAL)], count, NoRandom()))


class NoRandom:
    """The exponential source of schedules with fixed slots only."""

    def draw(self) -> int:
        raise AssertionError("a fixed schedule draws no random numbers")


def stamp_at(ntp: int, sync: bool = True, error: float = ERROR.seconds) -> Stamp:
    """A kernel receive stamp at timestamp ``ntp``."""
    return Stamp(ntp_to_ns(ntp), sync, error)


@dataclass
class Link:
    """A sender and a receiver of one session, joined by hand."""

    sender: OwampSender
    receiver: OwampReceiver
    times: list[int]  # scheduled send time of each packet

    def packet(self, seq: int, sent_at: int) -> bytes:
        """The wire bytes of packet ``seq`` stamped at ``sent_at``."""
        return bytes(self.sender.stamp(self.sender.prepare(seq), sent_at, ERROR.to_int()))

    def deliver(
        self, seq: int, delay: int = duration_to_ntp(0.0001), ttl: int | None = 250
    ) -> Arrival | None:
        """Send packet ``seq`` on schedule and receive it ``delay`` later."""
        sent_at = self.times[seq]
        wire, received = self.packet(seq, sent_at), stamp_at(sent_at + delay)
        accepted = self.receiver.on_datagram(wire, received, ttl)
        return self.receiver.record.arrivals[-1] if accepted else None


def make_link(mode: str, count: int = 5, padding: bytes = b"", **options: Any) -> Link:
    """A sender and receiver of a ``count``-packet session in ``mode``."""
    record = OwampSessionRecord(SID, "to", mode, "passphrase", count)
    protection = protection_for(mode)
    times = fixed_times(count)
    receiver = OwampReceiver(record, times, TIMEOUT, protection, **options)
    return Link(OwampSender(padding, protection), receiver, times)


def transcript(name: str) -> dict[str, Any]:
    """A perfSONAR OWAMP transcript, e.g. "owamp-A"."""
    return load_vector(name)


def transcript_keys(doc: dict[str, Any]) -> SessionKeys | None:
    """The control session keys of a secured transcript."""
    derived = doc.get("derived_for_checking")
    if derived is None:
        return None
    return SessionKeys(
        bytes.fromhex(derived["aes_session_key"]), bytes.fromhex(derived["hmac_session_key"])
    )


def fetch_records(receiver: OwampReceiver, begin: int, end: int) -> list[PacketRecord]:
    """Drain ``receiver.fetch``: every step, the records, and the count it announced for them."""
    steps = receiver.fetch(begin, end)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            count, records = done.value
            break
    fetched = list(records)
    assert len(fetched) == count  # what Fetch-Ack announces is what follows (RFC 4656 §3.9)
    return fetched
