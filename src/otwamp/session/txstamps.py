"""Matching the kernel's transmit timestamps to the packets sent, without sockets.

With SO_TIMESTAMPING's OPT_ID the kernel numbers the datagrams a socket
sends, from 0, and reports each transmit time with that ordinal
(``otwamp.drivers.txstamp``). ``TransmitStamps`` is told each packet sent
(its sequence number and user-space timestamp) and turns (ordinal, time)
reports into (sequence number, time). A send that failed may have used up
an ordinal on some kernels; a report earlier than the user-space timestamp
of the packet its ordinal names shows that, and the ordinals are shifted
from then on. Packets that never get a report keep their user-space time.
"""

from collections import deque

PENDING_LIMIT = 4096  # packets awaiting their report; older ones keep user-space time


class TransmitStamps:
    """Turns the kernel's (ordinal, transmit time) reports into (sequence number, time)."""

    __slots__ = ("_first", "_pending", "_shift", "matched")

    def __init__(self) -> None:
        self._pending: deque[tuple[int, int]] = deque()  # (seq, user ns), by send ordinal
        self._first = 0  # send ordinal of _pending[0]
        self._shift = 0  # ordinals the kernel used on sends that sent nothing
        self.matched = 0

    @property
    def awaited(self) -> int:
        """Packets sent whose report has not come (or never will, past PENDING_LIMIT)."""
        return len(self._pending)

    def sent(self, seq: int, user_ns: int) -> None:
        """Packet ``seq`` was sent (the kernel took it) with user-space time ``user_ns``."""
        pending = self._pending
        if len(pending) >= PENDING_LIMIT:  # the kernel does not report: stay bounded
            pending.popleft()
            self._first += 1
        pending.append((seq, user_ns))

    def stamped(self, ordinal: int, kernel_ns: int) -> int | None:
        """The sequence number of the packet the kernel sent at ``kernel_ns``, or None."""
        pending = self._pending
        index = ordinal - self._shift - self._first
        if not 0 <= index < len(pending):
            return None
        if kernel_ns < pending[index][1]:
            # Earlier than that packet left user space: a failed send used an
            # ordinal. The packet is the latest one sent before kernel_ns.
            while index > 0 and pending[index][1] > kernel_ns:
                index -= 1
            if pending[index][1] > kernel_ns:
                return None
            self._shift = ordinal - self._first - index
        seq = pending[index][0]
        for _ in range(index + 1):
            pending.popleft()
        self._first += index + 1
        self.matched += 1
        return seq
