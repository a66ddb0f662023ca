"""Kernel transmit timestamps for a TWAMP Session-Sender's socket (Linux SO_TIMESTAMPING).

``enable_transmit_stamps`` asks the kernel for a software timestamp of every
datagram as the driver hands it to the device (SOF_TIMESTAMPING_TX_SOFTWARE),
queued on the socket's error queue with the datagram's ordinal since then
(OPT_ID) and without its octets (OPT_TSONLY); OPT_RX_FILTER, where the
kernel has it, keeps received datagrams' timestamps in their SO_TIMESTAMPNS
form only. The queue is read with ``stamp_reflector.transmit_times``, and
ordinals become sequence numbers in ``otwamp.session.txstamps``. A kernel
that refuses leaves the socket as it was: the sender keeps its own
timestamps.
"""

import socket

from otwamp.drivers.stamp_reflector import SO_TIMESTAMPING

# SOF_TIMESTAMPING_* (include/uapi/linux/net_tstamp.h)
SOF_TIMESTAMPING_TX_SOFTWARE = 1 << 1
SOF_TIMESTAMPING_SOFTWARE = 1 << 4
SOF_TIMESTAMPING_OPT_ID = 1 << 7
SOF_TIMESTAMPING_OPT_TSONLY = 1 << 11
SOF_TIMESTAMPING_OPT_RX_FILTER = 1 << 17  # Linux 6.8
TRANSMIT_FLAGS = (
    SOF_TIMESTAMPING_TX_SOFTWARE
    | SOF_TIMESTAMPING_SOFTWARE
    | SOF_TIMESTAMPING_OPT_ID
    | SOF_TIMESTAMPING_OPT_TSONLY
)


def enable_transmit_stamps(sock: socket.socket) -> bool:
    """Ask for kernel transmit timestamps on ``sock``; False when the kernel cannot."""
    for flags in (TRANSMIT_FLAGS | SOF_TIMESTAMPING_OPT_RX_FILTER, TRANSMIT_FLAGS):
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPING, flags)
        except OSError:
            continue
        return True
    return False
