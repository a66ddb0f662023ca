"""Small shared checks and fields of the codecs; every decoding failure is a ProtocolError."""

import ipaddress

from otwamp.errors import ProtocolError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def need_length(data: bytes, size: int, what: str, section: str) -> None:
    """Raise unless ``data`` is exactly ``size`` octets long."""
    if len(data) != size:
        raise ProtocolError(f"expected {size} octets, got {len(data)}", field=what, section=section)


def need_at_least(data: bytes, size: int, what: str, section: str) -> None:
    """Raise unless ``data`` is at least ``size`` octets long."""
    if len(data) < size:
        raise ProtocolError(
            f"expected at least {size} octets, got {len(data)}", field=what, section=section
        )


def check_command(data: bytes, expected: int, what: str, section: str) -> None:
    """Raise unless the first octet is the ``expected`` Command Number (RFC 4656 §3.4)."""
    if data[0] != expected:
        raise ProtocolError(
            f"Command Number {data[0]}, expected {int(expected)}", field=what, section=section
        )


def encode_address(address: IPAddress) -> bytes:
    """A 16-octet address field: IPv4 in its first 4 octets, the rest zero (RFC 4656 §3.5)."""
    return address.packed.ljust(16, b"\0")


def decode_addresses(
    ipvn_octet: int, sender: bytes, receiver: bytes, section: str
) -> tuple[IPAddress, IPAddress]:
    """Sender and Receiver Address of the IP version IPVN names (RFC 4656 §3.5)."""
    ipvn = ipvn_octet & 0x0F  # the high 4 bits of the octet are MBZ
    if ipvn == 4:
        return ipaddress.IPv4Address(sender[:4]), ipaddress.IPv4Address(receiver[:4])
    if ipvn == 6:
        return ipaddress.IPv6Address(sender), ipaddress.IPv6Address(receiver)
    raise ProtocolError(f"IPVN is {ipvn}, not 4 or 6", field="IPVN", section=section)
