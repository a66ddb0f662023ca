"""DSCP names (RFC 2474 class selectors, RFC 2597 AF, RFC 3246 EF, RFC 8622 LE)."""

from otwamp.errors import ConfigError

DSCP_NAMES: dict[str, int] = {
    "BE": 0,
    "DF": 0,
    "LE": 1,
    "EF": 46,
    "VA": 44,
    **{f"CS{n}": n << 3 for n in range(8)},
    **{f"AF{c}{d}": (c << 3) | (d << 1) for c in range(1, 5) for d in range(1, 4)},
}


def parse_dscp(text: str) -> int:
    """A DSCP from a name (EF, AF41, CS5...) or a number 0-63."""
    name = text.strip().upper()
    if name in DSCP_NAMES:
        return DSCP_NAMES[name]
    if name.isdigit() and 0 <= int(name) < 64:
        return int(name)
    if name.startswith("0X"):
        try:
            value = int(name, 16)
        except ValueError:
            value = -1
        if 0 <= value < 64:
            return value
    raise ConfigError(f"{text!r} is not a DSCP: use a name (EF, AF41, CS5, BE...) or 0-63")
