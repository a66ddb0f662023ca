"""The Session-Reflector's packet work, without sockets or clocks (RFC 5357 §4.2).

``reflect`` turns a received sender packet into a reply whose own Timestamp
is still to be written; ``stamp`` writes it as the last step before the
send call (decision D10).
"""

import struct
from dataclasses import dataclass

from otwamp.wire.twamp_test import (
    REFLECTOR_OPEN,
    REFLECTOR_OPEN_SIZE,
    SENDER_OPEN,
    SENDER_OPEN_SIZE,
    reflector_size,
)

# RFC 5357 §4.2.1: the reply re-uses the sender's padding, truncated by the
# 27 octets the reflector's larger format needs.
_EXTRA = REFLECTOR_OPEN_SIZE - SENDER_OPEN_SIZE
_STAMP = struct.Struct("!QH")  # Timestamp and Error Estimate


@dataclass(slots=True)
class ReflectorCounters:
    """What one session's reflector did with the datagrams it got."""

    reflected: int = 0
    truncated: int = 0
    wrong_source: int = 0
    auth_failures: int = 0


class SessionReflector:
    """Reflects the packets of one unauthenticated session."""

    def __init__(self) -> None:
        self.counters = ReflectorCounters()
        self._seq = 0  # the reflector's own numbering, independent of the sender's

    def reflect(self, data: bytes, t2_ntp: int, t2_error: int, ttl: int | None) -> bytearray | None:
        """The reply to ``data`` received at ``t2_ntp``, or None when it is dropped."""
        if len(data) < SENDER_OPEN_SIZE:
            self.counters.truncated += 1
            return None
        s_seq, s_ts, s_err = SENDER_OPEN.unpack_from(data)
        if not s_err & 0xFF:  # Multiplier 0 marks a corrupt packet (RFC 4656 §4.1.2)
            self.counters.truncated += 1
            return None
        reply = bytearray(reflector_size(False, len(data)))
        # RFC 5357 §4.2.1: Sender TTL is 255 when the kernel does not report the TTL.
        sender_ttl = 255 if ttl is None else ttl
        REFLECTOR_OPEN.pack_into(
            reply, 0, self._seq, 0, t2_error, t2_ntp, s_seq, s_ts, s_err, sender_ttl
        )
        reply[REFLECTOR_OPEN_SIZE:] = data[SENDER_OPEN_SIZE + _EXTRA :]
        self._seq += 1
        self.counters.reflected += 1
        return reply

    @staticmethod
    def stamp(reply: bytearray, ntp: int, error: int) -> bytearray:
        """Write the reply's Timestamp and Error Estimate (octets 4-13)."""
        _STAMP.pack_into(reply, 4, ntp, error)
        return reply
