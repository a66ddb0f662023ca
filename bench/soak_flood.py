"""``python -m bench.soak_flood HOST LO-HI PPS``: stray datagrams at a port range, bounded rate.

Sends random datagrams and OWAMP/TWAMP-shaped test packets (RFC 4656 §4.1.2,
RFC 5357 §4.1.2: sequence number, timestamp, Error Estimate, padding) to
random ports of LO-HI on HOST, from several sockets of 127.0.0.1 whose ports
no session uses, at about PPS datagrams a second, until stdin closes or
SIGTERM; then prints ``{"sent": N, "errors": N}``. HOST must be in
127.0.0.0/8: the flood never leaves the machine.
"""

import ipaddress
import json
import os
import random
import selectors
import signal
import socket
import struct
import sys
import time

from bench.soak_zygote import die_with_parent

SOURCES = 8  # sending sockets, so the strays come from several ports
TICK = 0.01  # seconds per burst
SHAPED = struct.Struct("!IQH")  # sequence, timestamp, Error Estimate (RFC 4656 §4.1.2)
TEST_SIZES = (14, 41, 48, 64, 112)  # open and authenticated sender and reflector sizes


def payloads() -> list[bytes]:
    """Test-packet-shaped datagrams of the protocols' sizes, then random ones of random sizes."""
    shaped = [
        (SHAPED.pack(seq, random.getrandbits(64), 0x8001) + os.urandom(size)).ljust(size, b"\0")
        for seq in range(32)
        for size in TEST_SIZES
    ]
    noise = [os.urandom(random.randint(1, 1400)) for _ in range(64)]
    return shaped + noise


def flood(host: str, low: int, high: int, pps: int) -> tuple[int, int]:
    """Flood until stdin closes or SIGTERM; returns (sent, errors)."""
    if not ipaddress.ip_address(host).is_loopback:
        raise SystemExit(f"soak_flood: {host} is not a loopback address")
    die_with_parent()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(SOURCES)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
    data = payloads()
    selector = selectors.DefaultSelector()
    selector.register(0, selectors.EVENT_READ)
    sent = errors = 0
    burst = max(1, round(pps * TICK))
    began = time.monotonic()
    try:
        while True:
            for _ in range(burst):
                try:
                    sockets[sent % SOURCES].sendto(
                        random.choice(data), (host, random.randint(low, high))
                    )
                except OSError:  # ENOBUFS, or an ICMP error reported on this socket
                    errors += 1
                sent += 1
            ahead = began + sent / pps - time.monotonic()
            if selector.select(max(ahead, 0.0)) and not os.read(0, 4096):
                break
    except SystemExit:
        pass
    finally:
        for sock in sockets:
            sock.close()
    return sent, errors


def main() -> None:
    """Parse HOST LO-HI PPS, flood, print the counts."""
    host, span, pps = sys.argv[1:4]
    low, high = (int(part) for part in span.split("-"))
    sent, errors = flood(host, low, high, int(pps))
    print(json.dumps({"sent": sent, "errors": errors}), flush=True)


if __name__ == "__main__":
    main()
