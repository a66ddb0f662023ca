"""What the server machines ask their drivers to do (docs/MACHINES.md).

A machine never touches a socket, a clock or a key store: it returns these
effects, and the driver carries them out in order. Effects that need an
answer (a key, a port) pause the machine until the driver calls the
matching method (``key_found``, ``port_bound``, ``port_failed``).
"""

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from otwamp.session.owamp_receiver import OwampReceiver
from otwamp.session.owamp_sender import OwampSender
from otwamp.session.protection import SessionProtection
from otwamp.wire.owamp_control import RequestSession
from otwamp.wire.twamp_features import PacketFormat

Endpoint = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Send:
    """Write these octets to the control connection."""

    data: bytes


@dataclass(frozen=True, slots=True)
class SendStream:
    """Write the octets ``chunks`` makes, the event loop turning between two; answer with
    ``stream_sent``. Fetch-Session data can be 25 MB of records (RFC 4656 §3.9): they are
    counted, made and encrypted a piece at a time, so that no other connection waits (S2).
    """

    chunks: Iterator[bytes]


@dataclass(frozen=True, slots=True)
class Close:
    """Close the control connection; ``reason`` is logged at ``level`` (None: nothing to say)."""

    reason: str | None = None
    level: int = logging.WARNING


@dataclass(frozen=True, slots=True)
class LookUpKey:
    """Find the shared secret for a KeyID (RFC 4656 §3.1); answer with ``key_found``.

    ``derived`` selects the RFC 7717 key source (the Mode's IKEv2 bit, D3).
    """

    key_id: bytes
    derived: bool


@dataclass(frozen=True, slots=True)
class BindTestPort:
    """Bind a UDP test socket (RFC 5357 §3.5); answer with ``port_bound`` or ``port_failed``."""

    host: str
    port: int
    dscp: int


@dataclass(frozen=True, slots=True)
class ComputeSchedule:
    """Compute an OWAMP session's send times (RFC 4656 §3.6, §5) off the event loop.

    Answer with ``schedule_ready``: a million packets take about a second.
    """

    request: RequestSession = field(repr=False)
    sid: bytes


@dataclass(frozen=True, slots=True)
class OpenReflector:
    """Reflect one TWAMP-Test session on the bound ``port`` for ``sender`` (RFC 5357 §4.2)."""

    sid: bytes
    port: int
    sender: Endpoint
    protection: SessionProtection | None = field(repr=False)
    refwait_ns: int
    test_format: PacketFormat | None = None  # RFC 6038 / RFC 7750 formats, when agreed


@dataclass(frozen=True, slots=True)
class OpenReceiver:
    """Receive one OWAMP-Test session on the bound ``port`` from ``sender`` (RFC 4656 §4.2)."""

    sid: bytes
    port: int
    sender: Endpoint
    receiver: OwampReceiver = field(repr=False)


@dataclass(frozen=True, slots=True)
class OpenSender:
    """Send one OWAMP-Test session from the bound ``port`` to ``receiver`` (RFC 4656 §4.1).

    ``times`` are the scheduled send timestamps and ``end`` the 32.32 time
    after which the sender gives up (the last packet plus Timeout).
    """

    sid: bytes
    port: int
    receiver: Endpoint
    sender: OwampSender = field(repr=False)
    times: Sequence[int] = field(repr=False)
    timeout: int
    end: int


@dataclass(frozen=True, slots=True)
class StartTest:
    """Start-Sessions was accepted: start the sessions opened since the last round (§3.7).

    The driver reads the host clock for them and answers with ``test_started``.
    """

    sids: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class StopReflectors:
    """Stop-Sessions (RFC 5357 §3.8): each session reflects for its Timeout more, then ends."""

    timeouts_ns: tuple[tuple[bytes, int], ...]


@dataclass(frozen=True, slots=True)
class StopSending:
    """Stop these OWAMP send sessions; answer with ``senders_stopped`` if ``reply`` (§3.8).

    A connection that ends stops its senders without waiting for the answer.
    """

    sids: tuple[bytes, ...]
    reply: bool = True


@dataclass(frozen=True, slots=True)
class StopReceiving:
    """Stop collecting packets of these OWAMP receive sessions (RFC 4656 §3.8)."""

    sids: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Release:
    """Close the test sockets of these sessions and give their ports back."""

    sids: tuple[bytes, ...]


Effect = (
    Send
    | SendStream
    | Close
    | LookUpKey
    | BindTestPort
    | ComputeSchedule
    | OpenReflector
    | OpenReceiver
    | OpenSender
    | StartTest
    | StopReflectors
    | StopSending
    | StopReceiving
    | Release
)
