"""The host clock: time now and its synchronization state (decision D9).

The S bit and the Error Estimate come from the kernel's view of the clock,
read with adjtimex(2) in read-only mode (modes = 0).
"""

import ctypes
import ctypes.util
import functools
import struct
import time
from dataclasses import dataclass

from otwamp.wire.timestamp import ErrorEstimate, ns_to_ntp

_TIME_ERROR = 5  # adjtimex return value: clock not synchronized
_STA_UNSYNC = 0x0040
# struct timex on 64-bit Linux: int modes (+4 pad), long offset, freq, maxerror,
# esterror, int status, ... ; 208 octets. We read maxerror, esterror and status.
_TIMEX = ctypes.c_char * 208  # made once: each new array type is a cycle for the collector
_TIMEX_HEAD = struct.Struct("@i4xqqqqi")
_RESOLUTION = 1e-6  # SO_TIMESTAMPNS and time_ns are exact to well under a microsecond


@dataclass(frozen=True, slots=True)
class ClockState:
    """Whether the kernel considers the clock synchronized, and its error bound."""

    synchronized: bool
    error: float  # seconds

    @property
    def estimate(self) -> ErrorEstimate:
        """The Error Estimate to put in packets (RFC 4656 §4.1.2)."""
        return ErrorEstimate.from_seconds(self.error, self.synchronized)


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """The C library, found once: find_library runs ldconfig, milliseconds of blocking work."""
    libc_name = ctypes.util.find_library("c")
    return None if libc_name is None else ctypes.CDLL(libc_name, use_errno=True)


def _adjtimex() -> tuple[int, bytes] | None:
    libc = _libc()
    if libc is None:
        return None
    buf = _TIMEX()
    state = libc.adjtimex(buf)
    if state < 0:
        return None
    return state, buf.raw


def clock_state() -> ClockState:
    """The kernel clock state; unknown reads as unsynchronized with a 1 s error."""
    result = _adjtimex()
    if result is None:
        return ClockState(False, 1.0)
    state, raw = result
    _modes, _offset, _freq, maxerror, esterror, status = _TIMEX_HEAD.unpack_from(raw)
    synchronized = state != _TIME_ERROR and not status & _STA_UNSYNC
    error_us = esterror if synchronized else maxerror
    return ClockState(synchronized, max(error_us * 1e-6, _RESOLUTION))


def now_ntp() -> int:
    """The current time as a 64-bit NTP timestamp."""
    return ns_to_ntp(time.time_ns())
