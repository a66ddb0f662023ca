"""``python -m bench.soak_greeter HOST``: the lag probe's control, a server that only greets.

An asyncio TCP server on HOST (loopback) and a free port, which it prints,
that writes 64 octets (a Server-Greeting's size, RFC 4656 §3.1) on every
accept and nothing else, until stdin closes. Probed like ``otwamp server``
on the same loaded machine, its lag is what CPU scheduling alone costs; what
the server takes beyond it is its own event loop's doing.
"""

import asyncio
import ipaddress
import sys

from bench.soak_zygote import die_with_parent

GREETING = bytes(64)


async def _greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(GREETING)
    try:
        await writer.drain()
        await reader.read()  # until the probe closes
    except OSError:
        pass
    finally:
        writer.close()


async def serve(host: str) -> None:
    """Greet until stdin closes."""
    server = await asyncio.start_server(_greet, host, 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


def main() -> None:
    """Serve on the loopback address given."""
    die_with_parent()
    host = sys.argv[1]
    if not ipaddress.ip_address(host).is_loopback:
        raise SystemExit(f"soak_greeter: {host} is not a loopback address")
    asyncio.run(serve(host))


if __name__ == "__main__":
    main()
