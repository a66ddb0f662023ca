"""Individual Session Control commands of TWAMP-Control (RFC 5938 §3.2-3.5).

Start-N-Sessions (7) and Stop-N-Sessions (9) come from the Control-Client,
Start-N-Ack (8) and Stop-N-Ack (10) from the Server. All four are one
16-octet block (Command Number, the Accept in the acknowledgements, MBZ,
Number of Sessions), then one 16-octet SID per session, and one HMAC block
for the whole message (RFC 5938 §3.2). As in ``twamp_control``, ``encode``
returns the message without its HMAC block; the control channel seals it.
"""

import struct
from dataclasses import dataclass
from typing import ClassVar, Self

from otwamp.errors import ProtocolError
from otwamp.wire._fields import check_command, need_at_least, need_length
from otwamp.wire.registry import TwampCommand

SID_SIZE = 16
HEAD_SIZE = 16
_HEAD = struct.Struct("!BB10xI")  # Command Number, Accept (MBZ in the commands), MBZ, Number


def message_size(head: bytes) -> int:
    """Octets of the whole message (HMAC excluded) that a first block announces.

    Raises ProtocolError for a Number of Sessions of 0 (RFC 5938 §3.2-3.5: one or greater).
    """
    need_at_least(head, HEAD_SIZE, "Number of Sessions", "RFC 5938 §3.2")
    count: int = _HEAD.unpack_from(head)[2]
    if count < 1:
        raise ProtocolError(
            "Number of Sessions MUST be one or greater",
            field="Number of Sessions",
            section="RFC 5938 §3.2",
        )
    return HEAD_SIZE + SID_SIZE * count


@dataclass(frozen=True, slots=True)
class _SessionList:
    """A message naming one or more sessions by SID (RFC 5938 §3.2-3.5)."""

    sids: tuple[bytes, ...]

    COMMAND: ClassVar[TwampCommand]
    NAME: ClassVar[str]
    SECTION: ClassVar[str]

    def __post_init__(self) -> None:
        if not self.sids:
            raise ValueError("a message names at least one SID")
        if any(len(sid) != SID_SIZE for sid in self.sids):
            raise ValueError("a SID is 16 octets")

    @property
    def accept_octet(self) -> int:
        """The second octet: MBZ in the commands, the Accept in the acknowledgements."""
        return 0

    def encode(self) -> bytes:
        """The first block and the SIDs, without the HMAC block."""
        head = _HEAD.pack(self.COMMAND, self.accept_octet, len(self.sids))
        return head + b"".join(self.sids)

    @classmethod
    def _split(cls, data: bytes) -> tuple[int, tuple[bytes, ...]]:
        """The Accept octet and the SIDs; every length and the Command Number checked."""
        need_at_least(data, HEAD_SIZE, cls.NAME, cls.SECTION)
        check_command(data, cls.COMMAND, cls.NAME, cls.SECTION)
        _, accept, _count = _HEAD.unpack_from(data)
        try:
            size = message_size(data)
        except ProtocolError as exc:
            raise ProtocolError(str(exc), field=cls.NAME, section=cls.SECTION) from None
        # RFC 5938 §3.2-3.5: exactly Number of Sessions SID fields follow.
        need_length(data, size, cls.NAME, cls.SECTION)
        sids = tuple(data[at : at + SID_SIZE] for at in range(HEAD_SIZE, size, SID_SIZE))
        return accept, sids


@dataclass(frozen=True, slots=True)
class _Command(_SessionList):
    """A Control-Client's command: the SIDs it names, Accept octet MBZ (RFC 5938 §3.2, §3.4)."""

    @classmethod
    def decode(cls, data: bytes) -> Self:
        """Decode the first block and the SIDs (the MBZ octets are ignored)."""
        return cls(cls._split(data)[1])


@dataclass(frozen=True, slots=True)
class StartNSessions(_Command):
    """Start-N-Sessions (RFC 5938 §3.2): start the sessions these SIDs name."""

    COMMAND = TwampCommand.START_N_SESSION
    NAME = "Start-N-Sessions"
    SECTION = "RFC 5938 §3.2"


@dataclass(frozen=True, slots=True)
class StopNSessions(_Command):
    """Stop-N-Sessions (RFC 5938 §3.4): stop the sessions these SIDs name."""

    COMMAND = TwampCommand.STOP_N_SESSION
    NAME = "Stop-N-Sessions"
    SECTION = "RFC 5938 §3.4"


@dataclass(frozen=True, slots=True)
class _Ack(_SessionList):
    """An acknowledgement: one Accept value for the SIDs it names (RFC 5938 §3.3, §3.5)."""

    accept: int = 0

    @property
    def accept_octet(self) -> int:
        """The Accept field (RFC 4656 §3.3 values)."""
        return self.accept

    @classmethod
    def decode(cls, data: bytes) -> Self:
        """Decode the first block and the SIDs."""
        accept, sids = cls._split(data)
        return cls(sids, accept)


@dataclass(frozen=True, slots=True)
class StartNAck(_Ack):
    """Start-N-Ack (RFC 5938 §3.3): the Accept for some SIDs of a Start-N-Sessions."""

    COMMAND = TwampCommand.START_N_ACK
    NAME = "Start-N-Ack"
    SECTION = "RFC 5938 §3.3"


@dataclass(frozen=True, slots=True)
class StopNAck(_Ack):
    """Stop-N-Ack (RFC 5938 §3.5): the Accept for some SIDs of a Stop-N-Sessions."""

    COMMAND = TwampCommand.STOP_N_ACK
    NAME = "Stop-N-Ack"
    SECTION = "RFC 5938 §3.5"
