"""Stamp and send in one native call where it can be (decision D10, DECISIONS R25).

From Python, the interpreter's own steps between reading the clock and the
send system call (big-integer arithmetic, the write, a method call and its
argument parsing) put 1.5-2 µs between a Timestamp and the wire.
``_stampsend.stamp_send`` reads the clock, writes the Timestamp and Error
Estimate and sends, all in C. It serves packets that need nothing after the
stamp (open and authenticated modes: their HMAC does not cover the
Timestamp, RFC 5357 §4.1.2) on connected sockets. Without the native module
(built from ``_stampsend.c`` when the package is installed, optional where
there is no C compiler) everything is stamped and sent from Python.
"""

import functools
import socket
from collections.abc import Callable

from otwamp.drivers.udp import SocketCounts

_stamp_send: Callable[[int, int, int, bytearray], int] | None
try:
    from otwamp.drivers._stampsend import stamp_send as _stamp_send
except ImportError:  # installed without a C compiler
    _stamp_send = None

StampSend = Callable[[int, bytearray], int]  # (Error Estimate, packet) -> Timestamp sent


def native_built() -> bool:
    """Whether this installation has the native call."""
    return _stamp_send is not None


def native_stamp_send(sock: socket.socket, offset: int | None) -> StampSend | None:
    """Stamp a packet at ``offset`` and send it on ``sock``, natively; None where it cannot.

    ``sock`` must be connected. ``offset`` None says the packet needs work
    after the stamp (encrypted mode); then, or without the native module,
    there is no native call.
    """
    if _stamp_send is None or offset is None:
        return None
    return functools.partial(_stamp_send, sock.fileno(), offset)


def send_stamped(
    stamp_send: StampSend, error: int, packet: bytearray, counts: SocketCounts
) -> None:
    """Stamp and send ``packet`` the way ``udp.send_datagram`` sends.

    An ICMP error queued for an earlier datagram is counted and the packet
    stamped and sent once more; a packet refused twice is not sent.
    """
    for _ in range(2):
        try:
            stamp_send(error, packet)
            return
        except ConnectionRefusedError:
            counts.refused += 1
