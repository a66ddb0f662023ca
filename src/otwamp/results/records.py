"""Per-packet records of a TWAMP session, the input of every metric and report.

Times are integers of nanoseconds since the Unix epoch, converted from the
packets' NTP timestamps (RFC 5357 §4.1.2, §4.2.1) or taken from the kernel.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Stamp:
    """One timestamp with its Error Estimate (RFC 4656 §4.1.2)."""

    ns: int
    sync: bool
    error: float  # seconds, from the Error Estimate's Scale and Multiplier


@dataclass(frozen=True, slots=True)
class Sent:
    """A test packet the Session-Sender sent."""

    seq: int
    t1: Stamp


@dataclass(frozen=True, slots=True)
class Reply:
    """A reflected packet received by the Session-Sender (RFC 5357 §4.2.1).

    t1: Sender Timestamp, t2: Receive Timestamp, t3: reflector Timestamp,
    t4: the sender's kernel receive time. ``sender_ttl`` is the TTL/Hop Limit
    of the sender's packet as the reflector saw it; ``ttl`` that of the reply
    as the sender saw it (None when the kernel did not report it).
    """

    sender_seq: int
    reflector_seq: int
    t1: Stamp
    t2: Stamp
    t3: Stamp
    t4: Stamp
    sender_ttl: int
    ttl: int | None


@dataclass(slots=True)
class Dropped:
    """Counts of received datagrams that were not accepted as replies.

    ``kernel_drops`` counts those the kernel dropped on the test socket
    before we could read them, e.g. with its receive queue full (Linux
    SO_RXQ_OVFL); they may include the session's own packets.
    """

    truncated: int = 0
    corrupt: int = 0  # Error Estimate Multiplier 0 (RFC 4656 §4.1.2)
    wrong_source: int = 0
    unknown_seq: int = 0
    auth_failures: int = 0
    kernel_drops: int = 0


@dataclass(slots=True)
class TwampSessionRecord:
    """Everything one TWAMP-Test session produced, in arrival order."""

    sid: bytes
    mode: str
    key_source: str
    sent: list[Sent] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)
    dropped: Dropped = field(default_factory=Dropped)
    completed: bool = True  # False when the session ended early (server vanished)
    initial_ttl: int = 255  # TTL the sender and reflector set on their packets


@dataclass(frozen=True, slots=True)
class Arrival:
    """An OWAMP-Test packet as the Session-Receiver recorded it (RFC 4656 §3.8, §4.2).

    ``sent`` is the packet's Timestamp and Error Estimate (the sender's
    clock), ``received`` the receiver's kernel receive time with its own
    estimate, ``ttl`` the TTL/Hop Limit seen (None when unknown).
    """

    seq: int
    sent: Stamp
    received: Stamp
    ttl: int | None


@dataclass(slots=True)
class OwampSessionRecord:
    """Everything one OWAMP-Test session produced at its receiver, in arrival order.

    ``direction`` is "to" (client sends, server receives) or "from" (server
    sends, client receives). ``count`` is the Number of Packets requested;
    ``next_seqno`` and ``skipped`` come from the sender's Stop-Sessions
    (RFC 4656 §3.8): packets at or above Next Seqno or inside a skip range
    were never sent and are not lost. ``discarded_from`` is where the
    receiver's §3.8 discard began: records of sent packets from there on
    were dropped because they were due within Timeout of the stop, so they
    are neither received nor lost (None: nothing discarded). ``incomplete``
    says why the results may be incomplete, e.g. a non-zero Accept in
    Stop-Sessions (§3.8), or is None.
    """

    sid: bytes
    direction: str
    mode: str
    key_source: str
    count: int
    arrivals: list[Arrival] = field(default_factory=list)
    next_seqno: int | None = None
    skipped: list[tuple[int, int]] = field(default_factory=list)
    dropped: Dropped = field(default_factory=Dropped)
    completed: bool = True
    initial_ttl: int = 255
    discarded_from: int | None = None
    incomplete: str | None = None
