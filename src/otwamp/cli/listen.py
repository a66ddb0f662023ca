"""Which control addresses ``otwamp server`` can listen on (docs/DECISIONS.md R7).

Default addresses that cannot be bound are skipped with a warning; an explicitly
configured one that cannot is fatal; and a server left with no address at all
does not start.
"""

import errno
import logging
import socket
from collections.abc import Iterable
from dataclasses import replace

from otwamp.cli.addresses import format_endpoint
from otwamp.cli.errors import CliError
from otwamp.drivers.control_server import ServerSettings

Endpoint = tuple[str, int]
log = logging.getLogger("otwamp.server")
PRIVILEGED_HINT = "ports below 1024 need root or CAP_NET_BIND_SERVICE"


def bind_failure(endpoint: Endpoint) -> OSError | None:
    """Why a TCP listener cannot bind ``endpoint`` now, or None if it can."""
    host, port = endpoint
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        for fam, kind, proto, _, address in socket.getaddrinfo(
            host, port, family, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
        ):
            with socket.socket(fam, kind, proto) as sock:
                # set as asyncio.start_server sets them: the probe fails exactly when it would
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if fam == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(address)
    except OSError as exc:
        return exc
    return None


def usable_listeners(settings: ServerSettings) -> ServerSettings:
    """``settings`` without the default addresses that cannot be bound; CliError if none is left."""
    defaults = ServerSettings()
    twamp, twamp_failed = _usable("TWAMP", settings.listen, defaults.listen)
    owamp, owamp_failed = _usable("OWAMP", settings.owamp_listen, defaults.owamp_listen)
    if not twamp and not owamp:
        failures = [
            f"{name}-Control on {_describe(failed, hint=False)}"
            for name, failed in (("TWAMP", twamp_failed), ("OWAMP", owamp_failed))
            if failed
        ]
        if not failures:
            raise CliError("nothing to serve: --listen and --owamp-listen are both off")
        refused = [*twamp_failed.items(), *owamp_failed.items()]
        hint = f"; {PRIVILEGED_HINT}" if _privileged(refused) else ""
        raise CliError(f"nothing to serve: cannot listen for {'; '.join(failures)}{hint}")
    return replace(settings, listen=twamp, owamp_listen=owamp)


def _usable(
    name: str, configured: tuple[Endpoint, ...], default: tuple[Endpoint, ...]
) -> tuple[tuple[Endpoint, ...], dict[Endpoint, OSError]]:
    """The addresses that bind, and why the others do not; CliError if a configured one fails."""
    failed = {ep: exc for ep in configured if (exc := bind_failure(ep)) is not None}
    if failed and configured != default:
        raise CliError(f"cannot listen for {name}-Control on {_describe(failed)}")
    for ep, exc in failed.items():
        log.warning("%s-Control not served on %s: %s", name, format_endpoint(*ep), _why(exc))
    return tuple(ep for ep in configured if ep not in failed), failed


def _describe(failed: dict[Endpoint, OSError], hint: bool = True) -> str:
    """``ADDR (reason), ADDR (reason)``, and a hint when a privileged port was refused."""
    text = ", ".join(f"{format_endpoint(*ep)} ({_why(exc)})" for ep, exc in failed.items())
    return f"{text}; {PRIVILEGED_HINT}" if hint and _privileged(failed.items()) else text


def _privileged(failed: Iterable[tuple[Endpoint, OSError]]) -> bool:
    """Whether binding a port below 1024 was refused for want of privilege."""
    return any(exc.errno == errno.EACCES and ep[1] < 1024 for ep, exc in failed)


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)
