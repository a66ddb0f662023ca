"""Small shared checks for the codecs; every failure is a ProtocolError."""

from otwamp.errors import ProtocolError


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


def need_range(value: int, low: int, high: int, what: str, section: str) -> None:
    """Raise unless ``low <= value <= high``."""
    if not low <= value <= high:
        raise ProtocolError(f"{value} is outside {low}..{high}", field=what, section=section)
