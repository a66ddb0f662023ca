"""What the IKE machines report to their driver (sans-I/O output)."""

from dataclasses import dataclass

from otwamp.ike.sa import IkeSa


@dataclass(frozen=True)
class Established:
    """The IKE SA is up (RFC 7296 §1.2); childless, so no Child SA came with it (RFC 6023)."""

    sa: IkeSa


@dataclass(frozen=True)
class Failed:
    """Negotiation failed; ``notify_type`` is the error notify sent or received, if any."""

    reason: str
    notify_type: int | None = None


@dataclass(frozen=True)
class Deleted:
    """The IKE SA is gone: deleted by either end (RFC 7296 §1.4.1), or given up; ``why`` says."""

    spi_i: bytes
    spi_r: bytes
    why: str = "deleted"


@dataclass(frozen=True)
class Rekeyed:
    """``new`` replaced ``old`` via CREATE_CHILD_SA (RFC 7296 §2.18); ``old`` is deleted next."""

    old: IkeSa
    new: IkeSa


@dataclass(frozen=True)
class RekeyFailed:
    """Our rekey request was refused; the old IKE SA stays up."""

    reason: str
    notify_type: int | None = None


@dataclass(frozen=True)
class Redundant:
    """Both ends rekeyed at once and ``sa``, which we created, lost (RFC 7296 §2.8.2).

    Of the two new IKE SAs the one with the lowest of the four nonces is deleted by the end
    that created it; the driver deletes ``sa``.
    """

    sa: IkeSa


@dataclass(frozen=True)
class TimedOut:
    """Our request went unanswered until its deadline despite retransmissions (RFC 7296 §2.1)."""

    reason: str


@dataclass(frozen=True)
class Abandoned:
    """A half-open handshake saw no IKE_AUTH in time; its state is dropped (RFC 7296 §2.6)."""

    reason: str


Event = Established | Failed | Deleted | Rekeyed | RekeyFailed | Redundant | TimedOut | Abandoned


@dataclass(frozen=True)
class Output:
    """Datagrams to send and events to report, in order."""

    datagrams: tuple[bytes, ...] = ()
    events: tuple[Event, ...] = ()

    def __add__(self, other: "Output") -> "Output":
        """This output, then ``other``."""
        return Output(self.datagrams + other.datagrams, self.events + other.events)
