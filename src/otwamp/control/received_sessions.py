"""The OWAMP sessions a server receives, fetchable from any control connection (RFC 4656 §3.8).

RFC 4656 §3.9 lets a client fetch a session's records on a different
OWAMP-Control connection than the one that ran it, and continuous clients
such as powstream do so. Sessions are registered when accepted and kept
once finished for a bounded time and a bounded volume of records, shared by
every connection of the server; the oldest finished ones go first.
"""

from collections import OrderedDict
from dataclasses import dataclass, field

from otwamp.session.owamp_receiver import OwampReceiver
from otwamp.wire.owamp_control import RequestSession


@dataclass(slots=True)
class ReceivedSession:
    """One session this server receives or received."""

    owner: bytes | None  # the KeyID that requested it; None in open mode (anyone may fetch)
    request: RequestSession  # as Fetch-Session reproduces it: the port used and the SID
    receiver: OwampReceiver = field(repr=False)
    octets: int = 0  # its schedule's and records' size once finished

    def fetchable_by(self, identity: bytes | None) -> bool:
        """Whether a connection authenticated as ``identity`` may fetch it."""
        return self.owner is None or self.owner == identity


class ReceivedSessions:
    """Receive sessions by SID: live ones, and finished ones within the retention bounds."""

    def __init__(self, keep_for_ns: int, max_octets: int) -> None:
        self.keep_for_ns = keep_for_ns
        self.max_octets = max_octets
        self.octets = 0
        self._live: dict[bytes, ReceivedSession] = {}
        self._finished: OrderedDict[bytes, tuple[int, ReceivedSession]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._live) + len(self._finished)

    def add(self, sid: bytes, session: ReceivedSession) -> None:
        """Register a session accepted for receiving."""
        self._live[sid] = session

    def discard(self, sid: bytes) -> None:
        """Forget a session that never ran."""
        self._live.pop(sid, None)

    def finished(self, sid: bytes, now: int) -> None:
        """Keep a session whose receiver has finished, from ``now`` on."""
        session = self._live.pop(sid, None)
        if session is None:
            return
        session.octets = session.receiver.octets
        self._finished[sid] = now, session
        self.octets += session.octets
        self.expire(now)

    def find(self, sid: bytes, identity: bytes | None, now: int) -> ReceivedSession | None:
        """The session ``sid`` if it is kept and ``identity`` may fetch it."""
        self.expire(now)
        session = self._live.get(sid) or self._finished.get(sid, (0, None))[1]
        return session if session is not None and session.fetchable_by(identity) else None

    def expire(self, now: int) -> None:
        """Drop finished sessions older than the retention time, then the oldest over volume."""
        while self._finished:
            sid, (finished_at, oldest) = next(iter(self._finished.items()))
            if now - finished_at < self.keep_for_ns and self.octets <= self.max_octets:
                return
            del self._finished[sid]
            self.octets -= oldest.octets
