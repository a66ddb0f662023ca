"""Small shared pieces of the OWAMP-Control codecs (RFC 4656 §3)."""

BLOCK = 16
SECTION_REQUEST = "RFC 4656 §3.5"
SECTION_STOP = "RFC 4656 §3.8"
SECTION_FETCH = "RFC 4656 §3.9"
UINT32 = (1 << 32) - 1
UINT64 = (1 << 64) - 1


def padded(size: int) -> int:
    """``size`` rounded up to whole 16-octet blocks (RFC 4656 §3.8, §3.9)."""
    return -(-size // BLOCK) * BLOCK


def pad(data: bytes) -> bytes:
    """``data`` zero-padded to whole 16-octet blocks (RFC 4656 §3.8, §3.9)."""
    return data.ljust(padded(len(data)), b"\0")


def check_sid(sid: bytes) -> None:
    """ValueError unless ``sid`` is 16 octets (RFC 4656 §3.5)."""
    if len(sid) != 16:
        raise ValueError("a SID is 16 octets")


def check_uint(value: int, limit: int, what: str) -> None:
    """ValueError unless ``0 <= value <= limit``: a field given to an encoder."""
    if not 0 <= value <= limit:
        raise ValueError(f"{what} is out of range: {value}")
