"""Parsing of HOST[:PORT] and ADDR[:PORT] arguments (IPv6 as [ADDR]:PORT)."""

from otwamp.errors import ConfigError


def parse_endpoint(text: str, default_port: int) -> tuple[str, int]:
    """Split ``host``, ``host:port``, ``[v6]`` or ``[v6]:port``; a bare IPv6 literal has no port."""
    text = text.strip()
    if not text:
        raise ConfigError("an empty address")
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not host:
            raise ConfigError(f"{text!r}: an IPv6 address in brackets needs its closing ']'")
        if rest and not rest.startswith(":"):
            raise ConfigError(f"{text!r}: expected ':PORT' after ']'")
        return host, _port(rest[1:], text) if rest else default_port
    if text.count(":") > 1:  # a bare IPv6 literal
        return text, default_port
    host, sep, port = text.partition(":")
    if not host:
        raise ConfigError(f"{text!r}: no host before ':'")
    return host, _port(port, text) if sep else default_port


def _port(text: str, whole: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise ConfigError(f"{whole!r}: port must be a number from 0 to 65535")
    return int(text)


def parse_port_range(text: str) -> tuple[int, int]:
    """``LO-HI`` as a pair of ports with 1 <= LO <= HI <= 65535."""
    low, sep, high = text.partition("-")
    if not sep or not low.strip().isdigit() or not high.strip().isdigit():
        raise ConfigError(f"{text!r}: a port range is LO-HI, e.g. 20000-20999")
    lo, hi = int(low), int(high)
    if not 1 <= lo <= hi <= 65535:
        raise ConfigError(f"{text!r}: need 1 <= LO <= HI <= 65535")
    return lo, hi


def format_endpoint(host: str, port: int) -> str:
    """``host:port``, or ``[host]:port`` for IPv6: what parse_endpoint reads back."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
