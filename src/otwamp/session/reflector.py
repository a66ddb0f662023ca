"""The Session-Reflector of one session, without sockets or clocks (RFC 5357 §4.2).

``reflect`` checks a received sender packet and builds the reply whose own
Timestamp is still to be written; ``stamp`` writes it as the last step
before the send call (decision D10), encrypting afterwards only in encrypted
mode, where the timestamp lies inside the encrypted octets.

The session's life is a timer in the aioquic style: ``start`` (Start-Sessions)
arms REFWAIT, which each reflected packet re-arms (RFC 5357 §4.2); ``stop``
(Stop-Sessions) sets a deadline Timeout ahead (RFC 5357 §3.8). The driver
asks ``get_timer`` when to call ``handle_timer``, which says when and why
the session is over. Times are integer nanoseconds of the wall clock
(``time.time_ns``), passed in by the caller.
"""

from collections.abc import Callable
from dataclasses import dataclass

from otwamp.session.protection import SessionProtection, open_packet
from otwamp.wire.timestamp import ns_to_ntp
from otwamp.wire.twamp_features import PacketFormat
from otwamp.wire.twamp_test import STAMP, sender_layout

REFWAIT_NS = 900 * 10**9  # the default REFWAIT (RFC 5357 §4.2)
_NEVER = 1 << 96  # later than any time in ns
STOPPED = "stopped"
UNKNOWN_TTL = 255  # Sender TTL when the TTL cannot be read (RFC 5357 §4.2)


@dataclass(slots=True)
class ReflectorCounters:
    """What one session's reflector did with the datagrams it got."""

    reflected: int = 0
    truncated: int = 0
    corrupt: int = 0  # Error Estimate Multiplier 0 (RFC 4656 §4.1.2)
    wrong_source: int = 0
    auth_failures: int = 0
    early: int = 0  # before Start-Sessions
    late: int = 0  # after the Timeout that followed Stop-Sessions (RFC 5357 §4.2)


class SessionReflector:
    """Reflects the packets of one session and decides when it is over."""

    def __init__(
        self,
        protection: SessionProtection | None = None,
        refwait_ns: int = REFWAIT_NS,
        test_format: PacketFormat | None = None,
    ) -> None:
        self.counters = ReflectorCounters()
        self.closed = False
        self._protection = protection
        # Encrypted mode: the reply last built and the function that finishes it (issue 15).
        self._begun: tuple[bytearray, Callable[[bytearray], bytearray]] | None = None
        self._unprotect = None if protection is None else protection.sender
        secured = protection is not None
        self._sender = sender_layout(secured)
        form = test_format or PacketFormat(secured)  # RFC 6038, RFC 7750 formats if agreed
        reply = form.reflector_layout
        self._dscp_ecn = form.dscp_ecn
        self._pack_reply = reply.fields.pack_into
        self._stamp_at = reply.stamp_offset
        # RFC 5357 §4.2.1: the reply re-uses the sender's padding, truncated by
        # the octets the reflector's larger format needs (27, or 64 with erratum 5045).
        self._padding_at = reply.size
        self._padding_from = form.reflect_from  # RFC 6038 §5.2.1: the octets to reflect first
        self._seq = 0  # the reflector's own numbering, independent of the sender's
        self._refwait_ns = refwait_ns
        self._started = False
        self._last_ns = 0  # Start-Sessions or the last packet reflected, ns
        self._stop_ns: int | None = None  # the end that Stop-Sessions set
        # Packets are reflected when received (the kernel's time) within these, whenever read.
        self._accept_from = _NEVER  # Start-Sessions
        self._accept_until = -1  # the stop's Timeout, or the close

    def start(self, now_ns: int) -> None:
        """Start reflecting (Start-Sessions, RFC 5357 §3.7); REFWAIT counts from ``now_ns``."""
        self._started = True
        self._last_ns = now_ns
        self._accept_from = now_ns
        self._accept_until = _NEVER if self._stop_ns is None else self._stop_ns

    def stop(self, now_ns: int, timeout_ns: int) -> None:
        """Stop-Sessions: reflect until ``now_ns + timeout_ns``, then end (RFC 5357 §3.8)."""
        deadline = now_ns + timeout_ns
        self._stop_ns = deadline if self._stop_ns is None else min(self._stop_ns, deadline)
        if self._started:
            self._accept_until = min(self._accept_until, self._stop_ns)

    def get_timer(self) -> int | None:
        """When ``handle_timer`` is next due: REFWAIT expiry or the stop deadline."""
        if self.closed:
            return None
        refwait = self._last_ns + self._refwait_ns if self._started else None
        deadlines = [when for when in (refwait, self._stop_ns) if when is not None]
        return min(deadlines, default=None)

    def handle_timer(self, now_ns: int) -> str | None:
        """Why the session is over once a deadline has passed (and ``closed``), else None."""
        if self.closed:
            return None
        if self._stop_ns is not None and now_ns >= self._stop_ns:
            return self._close(STOPPED)
        if self._started and now_ns >= self._last_ns + self._refwait_ns:
            seconds = self._refwait_ns / 10**9
            return self._close(f"no test packet for {seconds:.0f} s (REFWAIT)")
        return None

    def reflect(
        self, data: bytes, received_ns: int, t2_error: int, ttl: int | None, tos: int | None = None
    ) -> bytearray | None:
        """The reply to ``data`` received at ``received_ns``, or None when it is dropped."""
        counters = self.counters
        if not self._accept_from <= received_ns <= self._accept_until:
            if received_ns < self._accept_from:  # before Start-Sessions (RFC 5357 §3.7)
                counters.early += 1
            else:
                counters.late += 1  # RFC 5357 §4.2: ignored after Stop-Sessions + Timeout
            return None
        fields = open_packet(data, self._unprotect, self._sender, counters)
        if fields is None:
            return None
        s_seq, s_ts, s_err = fields
        reply = bytearray(max(self._padding_at, len(data)))
        sender_ttl = UNKNOWN_TTL if ttl is None else ttl
        t2 = ns_to_ntp(received_ns)
        fields = (self._seq, 0, t2_error, t2, s_seq, s_ts, s_err, sender_ttl)
        if self._dscp_ecn:  # RFC 7750 §2.2.1: S-DSCP-ECN, the DS field as received
            self._pack_reply(reply, 0, *fields, tos or 0)
        else:
            self._pack_reply(reply, 0, *fields)
        start, end = self._padding_from, self._padding_from + len(reply) - self._padding_at
        reply[self._padding_at :] = data[start:end]
        protection = self._protection
        if protection is not None and not protection.encrypts_timestamp:
            reply = bytearray(protection.reflector.protect(bytes(reply)))
        elif protection is not None:  # encrypted: the first block now, the rest after the stamp
            self._begun = reply, protection.reflector.begin(reply)
        self._seq += 1
        counters.reflected += 1
        self._last_ns = received_ns  # REFWAIT counts from the last packet received
        return reply

    @property
    def plain_stamp_offset(self) -> int | None:
        """Where ``stamp`` writes, if writing is all it does (open and authenticated modes)."""
        protection = self._protection
        return None if protection is not None and protection.encrypts_timestamp else self._stamp_at

    def stamp(self, reply: bytearray, ntp: int, error: int) -> bytes | bytearray:
        """Write the reply's Timestamp and Error Estimate; the result goes on the wire."""
        STAMP.pack_into(reply, self._stamp_at, ntp, error)
        protection = self._protection
        if protection is not None and protection.encrypts_timestamp:
            begun, self._begun = self._begun, None
            if begun is not None and begun[0] is reply:
                return begun[1](reply)
            return protection.reflector.protect(bytes(reply))
        return reply

    def _close(self, reason: str) -> str:
        self.closed = True
        self._accept_until = -1
        return reason
