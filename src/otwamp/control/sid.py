"""Session Identifiers (RFC 4656 §3.5)."""

import ipaddress
import struct
from collections.abc import Callable


def new_sid(receiver: str, now_ntp: int, random: Callable[[int], bytes]) -> bytes:
    """SID: 4 octets of the receiver's address, its timestamp now, 4 random octets (RFC 4656 §3.5).

    For IPv6 the address octets are the last four of the address, as the RFC
    allows ("the 4 least-significant octets ... or any other 4 octets").
    """
    address = ipaddress.ip_address(receiver.split("%", maxsplit=1)[0])
    return address.packed[-4:] + struct.pack("!Q", now_ntp) + random(4)
