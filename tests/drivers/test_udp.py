"""Test sockets on loopback: kernel drop counts, connected peers, ICMP errors."""

import socket
import time
from collections.abc import Iterator

import pytest

from otwamp.drivers.udp import (
    Datagram,
    SocketCounts,
    connect_peer,
    open_test_socket,
    receive_all,
    send_datagram,
)

BURST = 200
SIZE = 200  # octets: a tiny receive buffer holds only a few


@pytest.fixture
def receiver() -> Iterator[socket.socket]:
    """A test socket on 127.0.0.1 whose receive buffer holds a few datagrams."""
    sock = open_test_socket("127.0.0.1", 0, socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)  # the kernel's minimum
    with sock:
        yield sock


@pytest.fixture
def peer() -> Iterator[socket.socket]:
    """A plain UDP socket on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock


def drain(sock: socket.socket, counts: SocketCounts) -> list[Datagram]:
    """What is queued on ``sock``, once the loopback delivered it."""
    time.sleep(0.05)
    return list(receive_all(sock, counts))


def test_kernel_drops_arrive_with_the_next_datagram(
    receiver: socket.socket, peer: socket.socket
) -> None:
    counts = SocketCounts()
    for _ in range(BURST):
        peer.sendto(bytes(SIZE), receiver.getsockname())
    queued = len(drain(receiver, counts))
    assert 0 < queued < BURST  # the buffer overflowed
    # The queued datagrams went in before the drops: the next one carries the counter.
    assert counts.kernel_drops == 0
    peer.sendto(b"next", receiver.getsockname())
    (datagram,) = drain(receiver, counts)
    assert datagram.data == b"next"
    assert counts.kernel_drops == BURST - queued


def test_settle_reads_the_drops_no_datagram_reported(
    receiver: socket.socket, peer: socket.socket
) -> None:
    counts = SocketCounts()
    for _ in range(BURST):
        peer.sendto(bytes(SIZE), receiver.getsockname())
    queued = len(drain(receiver, counts))
    counts.settle(receiver)
    assert counts.kernel_drops == BURST - queued
    counts.settle(receiver)  # cumulative: read twice, counted once
    assert counts.kernel_drops == BURST - queued


def test_the_cumulative_counter_wraps_at_32_bits() -> None:
    counts = SocketCounts()
    counts.saw_drops(2**32 - 2)
    counts.saw_drops(3)
    assert counts.kernel_drops == 2**32 + 3


def test_a_connected_socket_gets_only_its_peer(
    receiver: socket.socket, peer: socket.socket
) -> None:
    counts = SocketCounts()
    expected = connect_peer(receiver, peer.getsockname())
    assert expected == peer.getsockname()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
        stranger.bind(("127.0.0.1", 0))
        stranger.sendto(b"stranger", receiver.getsockname())
        peer.sendto(b"peer", receiver.getsockname())
        (datagram,) = drain(receiver, counts)
    assert (datagram.data, datagram.source) == (b"peer", expected)
    assert counts == SocketCounts()  # the kernel turned the stranger away: no drop, no error


def test_a_connected_socket_sends_to_its_peer(receiver: socket.socket, peer: socket.socket) -> None:
    counts = SocketCounts()
    connect_peer(receiver, peer.getsockname())
    send_datagram(receiver, b"reply", None, counts)
    assert peer.recvfrom(64) == (b"reply", receiver.getsockname())


def test_an_ipv4_peer_of_a_dual_stack_socket_is_mapped(peer: socket.socket) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        sock = open_test_socket("::", 0, socket.AF_INET6)
    except OSError as exc:
        pytest.skip(f"no IPv6 socket: {exc}")
    with sock:
        counts = SocketCounts()
        source = connect_peer(sock, peer.getsockname())
        assert source == ("::ffff:127.0.0.1", peer.getsockname()[1])
        peer.sendto(b"mapped", ("127.0.0.1", sock.getsockname()[1]))
        (datagram,) = drain(sock, counts)
    assert datagram.source == source  # what the reflector compares sources against


def test_an_ipv4_mapped_peer_of_an_ipv4_socket_is_unmapped(
    receiver: socket.socket, peer: socket.socket
) -> None:
    port = peer.getsockname()[1]
    assert connect_peer(receiver, ("::ffff:127.0.0.1", port)) == ("127.0.0.1", port)


@pytest.mark.parametrize("bad", [("127.0.0.1", 0), ("::1", 9)])
def test_an_unreachable_peer_raises_os_error(receiver: socket.socket, bad: tuple[str, int]) -> None:
    with pytest.raises(OSError):
        connect_peer(receiver, bad)
    with pytest.raises(OSError):
        receiver.getpeername()  # left unconnected


def test_icmp_errors_are_counted_and_the_session_goes_on(
    receiver: socket.socket, peer: socket.socket
) -> None:
    counts = SocketCounts()
    address = peer.getsockname()
    connect_peer(receiver, address)
    peer.close()  # the peer's port is now closed: our next datagram gets port unreachable
    send_datagram(receiver, b"lost", None, counts)
    time.sleep(0.05)
    assert list(receive_all(receiver, counts)) == []  # ECONNREFUSED, counted
    assert counts.refused == 1
    send_datagram(receiver, b"lost again", None, counts)
    time.sleep(0.05)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again:
        again.bind(address)
        send_datagram(receiver, b"back", None, counts)  # refused once, then sent
        assert again.recvfrom(64)[0] == b"back"
    assert counts.refused == 2
