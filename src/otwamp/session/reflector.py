"""The Session-Reflector's packet work, without sockets or clocks (RFC 5357 §4.2).

``reflect`` checks a received sender packet and builds the reply whose own
Timestamp is still to be written; ``stamp`` writes it as the last step
before the send call (decision D10), encrypting afterwards only in encrypted
mode, where the timestamp lies inside the encrypted octets.
"""

import struct
from dataclasses import dataclass

from otwamp.errors import AuthenticationError, ProtocolError
from otwamp.session.protection import SessionProtection
from otwamp.wire.twamp_test import (
    REFLECTOR_AUTH,
    REFLECTOR_AUTH_SIZE,
    REFLECTOR_OPEN,
    REFLECTOR_OPEN_SIZE,
    SENDER_AUTH,
    SENDER_AUTH_SIZE,
    SENDER_OPEN,
    SENDER_OPEN_SIZE,
)

_STAMP = struct.Struct("!QH")  # Timestamp and Error Estimate


@dataclass(slots=True)
class ReflectorCounters:
    """What one session's reflector did with the datagrams it got."""

    reflected: int = 0
    truncated: int = 0
    wrong_source: int = 0
    auth_failures: int = 0


class SessionReflector:
    """Reflects the packets of one session."""

    def __init__(self, protection: SessionProtection | None = None) -> None:
        self.counters = ReflectorCounters()
        self._protection = protection
        secured = protection is not None
        self._sender = SENDER_AUTH if secured else SENDER_OPEN
        self._sender_size = SENDER_AUTH_SIZE if secured else SENDER_OPEN_SIZE
        self._reply = REFLECTOR_AUTH if secured else REFLECTOR_OPEN
        self._reply_size = REFLECTOR_AUTH_SIZE if secured else REFLECTOR_OPEN_SIZE
        # RFC 5357 §4.2.1: the reply re-uses the sender's padding, truncated by
        # the octets the reflector's larger format needs (27, or 64 with erratum 5045).
        self._extra = self._reply_size - self._sender_size
        self._stamp_at = 16 if secured else 4
        self._seq = 0  # the reflector's own numbering, independent of the sender's

    def reflect(self, data: bytes, t2_ntp: int, t2_error: int, ttl: int | None) -> bytearray | None:
        """The reply to ``data`` received at ``t2_ntp``, or None when it is dropped."""
        plain = self._check(data)
        if plain is None:
            return None
        s_seq, s_ts, s_err = self._sender.unpack_from(plain)
        if not s_err & 0xFF:  # Multiplier 0 marks a corrupt packet (RFC 4656 §4.1.2)
            self.counters.truncated += 1
            return None
        reply = bytearray(max(self._reply_size, len(data)))
        # RFC 5357 §4.2.1: Sender TTL is 255 when the kernel does not report the TTL.
        sender_ttl = 255 if ttl is None else ttl
        self._reply.pack_into(
            reply, 0, self._seq, 0, t2_error, t2_ntp, s_seq, s_ts, s_err, sender_ttl
        )
        reply[self._reply_size :] = data[self._sender_size + self._extra :]
        protection = self._protection
        if protection is not None and not protection.encrypts_timestamp:
            reply = bytearray(protection.reflector.protect(bytes(reply)))
        self._seq += 1
        self.counters.reflected += 1
        return reply

    def stamp(self, reply: bytearray, ntp: int, error: int) -> bytes | bytearray:
        """Write the reply's Timestamp and Error Estimate; the result goes on the wire."""
        _STAMP.pack_into(reply, self._stamp_at, ntp, error)
        protection = self._protection
        if protection is not None and protection.encrypts_timestamp:
            return protection.reflector.protect(bytes(reply))
        return reply

    def _check(self, data: bytes) -> bytes | None:
        """The sender packet's plaintext, or None (counted) when short or forged."""
        if len(data) < self._sender_size:
            self.counters.truncated += 1
            return None
        if self._protection is None:
            return data
        try:
            return self._protection.sender.unprotect(data)
        except AuthenticationError:
            self.counters.auth_failures += 1
        except ProtocolError:
            self.counters.truncated += 1
        return None
