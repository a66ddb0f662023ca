"""The native stamp-and-send call against the real kernel, and its Python fallback.

``_stampsend.stamp_send`` must write what ``SenderPackets.stamp`` writes, at
the time it returns, and fail as ``socket.send`` fails; ``Transmitter`` and
the reflector use it for open and authenticated packets on connected sockets
and stamp from Python otherwise (encrypted mode, or no native module).
"""

import socket
import time
from collections.abc import Iterator

import pytest

from otwamp.drivers import stampsend
from otwamp.drivers.pacer import Transmitter
from otwamp.drivers.udp import SocketCounts
from otwamp.results.records import TwampSessionRecord
from otwamp.session.reflector import SessionReflector
from otwamp.session.sender import SessionSender
from otwamp.wire.timestamp import ns_to_ntp
from tests.session.helpers import ERROR, protection_for

MODES = ["open", "authenticated", "encrypted"]


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A UDP socket connected to another on loopback, both non-blocking."""
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver,
    ):
        receiver.bind(("127.0.0.1", 0))
        sender.connect(receiver.getsockname())
        receiver.settimeout(2.0)
        sender.setblocking(False)
        yield sender, receiver


def _sender(mode: str) -> SessionSender:
    record = TwampSessionRecord(b"\x01" * 16, mode, "none")
    return SessionSender(record, bytes(27), protection_for(mode))


def test_the_native_module_is_built() -> None:
    """The package builds it wherever there is a C compiler, so the tests insist on it."""
    from otwamp.drivers._stampsend import stamp_send

    assert stampsend.native_built()
    assert callable(stamp_send)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("native", [True, False])
def test_sent_packets_are_the_python_stamp_at_the_returned_time(
    pair: tuple[socket.socket, socket.socket],
    mode: str,
    native: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Natively or not, the wire holds exactly what ``stamp`` makes of the time returned."""
    if not native:
        monkeypatch.setattr(stampsend, "_stamp_send", None)
    sock, receiver = pair
    ours, reference = _sender(mode), _sender(mode)
    transmitter = Transmitter(sock, None, ours, ERROR.to_int(), SocketCounts())
    for seq in range(3):
        before = ns_to_ntp(time.time_ns())
        ntp = transmitter.send(ours.prepare(seq))
        assert before <= ntp <= ns_to_ntp(time.time_ns())
        expected = bytes(reference.stamp(reference.prepare(seq), ntp, ERROR.to_int()))
        assert receiver.recv(2048) == expected


@pytest.mark.parametrize("mode", MODES)
def test_only_packets_finished_at_the_stamp_go_native(mode: str) -> None:
    """Encrypted mode runs its CBC chain and HMAC after the stamp: no native call for it."""
    offset = _sender(mode).plain_stamp_offset
    reflector_offset = SessionReflector(protection_for(mode)).plain_stamp_offset
    assert offset == reflector_offset == {"open": 4, "authenticated": 16, "encrypted": None}[mode]
    assert (stampsend.native_stamp_send(socket.socket(), offset) is None) == (mode == "encrypted")


def test_a_full_send_buffer_raises_blocking_io_error_and_sends_nothing() -> None:
    """EAGAIN as ``socket.send`` raises it (a datagram socket pair whose peer does not read)."""
    stamp_send = stampsend._stamp_send
    assert stamp_send is not None
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with left, right:
        left.setblocking(False)
        sent = 0
        with pytest.raises(BlockingIOError):
            for _ in range(100_000):
                stamp_send(left.fileno(), 0, 0, bytearray(64))
                sent += 1
        right.setblocking(False)
        assert sum(1 for _ in iter(lambda: _recv_or_none(right), None)) == sent


def _recv_or_none(sock: socket.socket) -> bytes | None:
    try:
        return sock.recv(64)
    except BlockingIOError:
        return None


def test_a_refused_peer_is_counted_and_sent_again() -> None:
    """ECONNREFUSED (an ICMP error for an earlier datagram) as ConnectionRefusedError."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as gone:
            gone.bind(("127.0.0.1", 0))
            sock.connect(gone.getsockname())
        send = stampsend.native_stamp_send(sock, 0)
        assert send is not None
        send(0, bytearray(16))  # answered by ICMP port unreachable
        time.sleep(0.05)
        counts = SocketCounts()
        stampsend.send_stamped(send, 0, bytearray(16), counts)
        assert counts.refused == 1
        with pytest.raises(ConnectionRefusedError):
            time.sleep(0.05)
            send(0, bytearray(16))


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((0, 11, 0, bytearray(20)), ValueError),  # no room for the 10 octets
        ((0, -1, 0, bytearray(20)), ValueError),
        ((0, 0, 1 << 16, bytearray(20)), ValueError),  # the Error Estimate is 16 bits
        ((-1, 0, 0, bytearray(20)), ValueError),
        ((0, 0, 0, bytes(20)), BufferError),  # read-only
        ((0, 0, 0, "packet"), TypeError),
        ((0, "4", 0, bytearray(20)), TypeError),
        ((0, 0, 0), TypeError),
    ],
)
def test_bad_arguments_raise_before_anything_is_sent(args: tuple[object, ...], error: type) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.connect(sock.getsockname())
        sock.setblocking(False)
        fd_args = (sock.fileno(), *args[1:]) if args[0] == 0 else args
        with pytest.raises(error):
            stampsend._stamp_send(*fd_args)  # type: ignore[misc]
        with pytest.raises(BlockingIOError):
            sock.recv(64)


def test_a_closed_descriptor_raises_os_error() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    send = stampsend.native_stamp_send(sock, 0)
    sock.close()
    assert send is not None
    with pytest.raises(OSError, match="Bad file descriptor"):
        send(0, bytearray(16))
