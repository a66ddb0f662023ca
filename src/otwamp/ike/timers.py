"""The IKE machines' timers: retransmission, SA lifetimes, half-open expiry (sans-I/O).

Every time is absolute, in whatever clock the driver passes as ``now``; the machines expose
``get_timer()`` and ``handle_timer(now)`` in the manner of aioquic, and never read a clock.
"""

from dataclasses import dataclass

# RFC 7296 §2.1: the initiator retransmits with exponential back-off (seconds after each send).
RETRANSMIT_DELAYS = (0.5, 1.0, 2.0, 4.0)
EXCHANGE_TIMEOUT = 10.0  # seconds a request waits for its response by default
HALF_OPEN_LIFETIME = 30.0  # seconds a responder waits for IKE_AUTH (RFC 7296 §2.6)
REKEY_RETRY_MIN = 1.0  # seconds before retrying a rekey that failed (at least)
DEFAULT_REKEY_TIME = 14_400.0  # 4 h, strongSwan's default rekey_time for IKE SAs
LIFETIME_MARGIN = 1.1  # lifetime = 110 % of rekey_time unless set (strongSwan's over_time)


@dataclass(frozen=True)
class Lifetimes:
    """When an IKE SA is rekeyed and when it ends if rekeying failed (seconds after set-up).

    Each SA rekeys at a random point of the last ``jitter`` seconds before ``rekey_time``, so
    that two peers with the same settings rarely start a rekey at once (RFC 7296 §2.8.1).
    """

    rekey_time: float = DEFAULT_REKEY_TIME
    lifetime: float = DEFAULT_REKEY_TIME * LIFETIME_MARGIN
    jitter: float = DEFAULT_REKEY_TIME * 0.1

    def __post_init__(self) -> None:
        if not 0 < self.rekey_time <= self.lifetime:
            raise ValueError("rekey_time must be positive and at most lifetime")
        if not 0 <= self.jitter < self.rekey_time:
            raise ValueError("jitter must be at least 0 and less than rekey_time")


@dataclass(slots=True)
class Retransmission:
    """One outstanding request: when to resend it and when to give up (RFC 7296 §2.1)."""

    sent_at: float
    deadline: float
    resent: int = 0

    @property
    def timeout(self) -> float:
        """How long the request may go unanswered, in seconds."""
        return self.deadline - self.sent_at

    def get_timer(self) -> float:
        """The next resend, or the deadline once every resend is done."""
        if self.resent < len(RETRANSMIT_DELAYS):
            return min(self._resend_at(self.resent), self.deadline)
        return self.deadline

    def resend_due(self, now: float) -> bool:
        """Whether to resend at ``now``; resends whose time has passed count as done."""
        due = False
        while self.resent < len(RETRANSMIT_DELAYS) and self._resend_at(self.resent) <= now:
            self.resent += 1
            due = True
        return due

    def restarted(self, now: float) -> "Retransmission":
        """The schedule of the next request of the same exchange, sent at ``now``."""
        return Retransmission(now, self.deadline)

    def _resend_at(self, index: int) -> float:
        return self.sent_at + sum(RETRANSMIT_DELAYS[: index + 1])


@dataclass(slots=True)
class Lifetime:
    """When an established SA rekeys and when it ends (RFC 7296 §2.8)."""

    rekey_at: float
    expire_at: float
    retry: float  # seconds between rekey attempts after a failure
    delete_timeout: float  # seconds the final delete waits for its answer

    @classmethod
    def start(cls, lifetimes: Lifetimes, now: float, jitter_fraction: float) -> "Lifetime":
        """The schedule of an SA set up at ``now``; rekey ``jitter_fraction`` of jitter early.

        RFC 7296 §2.8.1: random jitter makes simultaneous rekeys by both ends rare.
        """
        return cls(
            now + lifetimes.rekey_time - jitter_fraction * lifetimes.jitter,
            now + lifetimes.lifetime,
            max(REKEY_RETRY_MIN, lifetimes.jitter),
            min(EXCHANGE_TIMEOUT, lifetimes.lifetime),
        )

    def retry_later(self, now: float) -> None:
        """Move the next rekey attempt a little later, never past the end."""
        self.rekey_at = min(now + self.retry, self.expire_at)
