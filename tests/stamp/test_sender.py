"""The sans-I/O Session-Sender against the sans-I/O Session-Reflector, in memory."""

from hypothesis import given
from hypothesis import strategies as st

from otwamp.results.metrics import summarize_twamp
from otwamp.results.records import Stamp, TwampSessionRecord
from otwamp.stamp.packets import AUTH_SIZE, BASE_SIZE, ReflectorPacket, StampHmac
from otwamp.stamp.reflector import Received, ReflectorMode, StampReflector
from otwamp.stamp.sender import StampSender, TlvRequest, with_follow_up
from otwamp.wire.timestamp import ErrorEstimate, ns_to_ntp

NOW = 1_800_000_000 * 10**9
KEY = StampHmac(b"q" * 20)
ALL = TlvRequest(
    extra_padding=10,
    location=True,
    timestamp_information=True,
    class_of_service=46,
    direct_measurement=True,
    access_report=(2, 9),
    follow_up=True,
)
ESTIMATE = ErrorEstimate(False, 0, 1)


def run(
    sender: StampSender, reflector: StampReflector, count: int, lose: set[int] = frozenset()
) -> None:
    for seq in range(count):
        sent_ns = NOW + seq * 10**6
        wire = bytes(sender.stamp(sender.prepare(seq), ns_to_ntp(sent_ns), ESTIMATE.to_int()))
        sender.mark_sent(seq, ns_to_ntp(sent_ns), ESTIMATE)
        reflection = reflector.reflect(
            Received(wire, ("10.0.0.1", 5000), ("10.0.0.2", 862), sent_ns + 1000, 64, 46 << 2)
        )
        assert reflection is not None
        t3 = ns_to_ntp(sent_ns + 2000)
        reply = bytes(reflector.stamp(reflection, t3, 0x0101))
        assert len(reply) == len(wire)  # symmetric (RFC 8762 §4)
        reflector.sent(reflection, t3, seq)
        reflector.transmitted(seq, sent_ns + 2500)
        if seq not in lose:
            sender.on_datagram(reply, Stamp(sent_ns + 3000, False, 1e-6), 64, 46 << 2)


def record() -> TwampSessionRecord:
    return TwampSessionRecord(sid=b"\x00\x07", mode="open", key_source="none")


def test_base_sizes() -> None:
    assert StampSender(record(), 7).size == BASE_SIZE
    assert StampSender(record(), 7, key=KEY).size == AUTH_SIZE


def test_every_tlv_both_modes() -> None:
    for key in (None, KEY):
        reflector = StampReflector(
            ReflectorMode.STATEFUL, (lambda _a, _s: KEY) if key else None, synchronized=True
        )
        sender = StampSender(record(), 7, ALL, key)
        run(sender, reflector, 5)
        extras = sender.extras
        assert sender.answered == 5 and not sender.record.dropped.auth_failures
        assert (extras.unrecognized, extras.malformed, extras.integrity) == (0, 0, 0)
        assert extras.cos_forward == {(46, 0): 5} and extras.cos_backward == {(46, 0): 5}
        assert extras.direct is not None and extras.direct.sender_tx == 5
        assert extras.direct.reflector_rx == extras.direct.reflector_tx == 5
        assert extras.access_report is not None and extras.access_report.access_id == 2
        assert extras.location is not None
        assert extras.location["destination_ipv4"] == "10.0.0.2"
        assert extras.location["source_ipv4"] == "10.0.0.1"
        assert extras.timestamp_information is not None
        assert sorted(extras.follow_ups) == [0, 1, 2, 3]  # each reply reports the previous one
        assert with_follow_up(sender.record, extras.follow_ups) == 4
        assert sender.record.replies[0].t3.ns == NOW + 2500  # the kernel's transmit time


def test_stateful_directional_loss() -> None:
    sender = StampSender(record(), 7)
    run(sender, StampReflector(ReflectorMode.STATEFUL), 10, lose={3, 4})
    summary = summarize_twamp(sender.record)
    assert summary.packets.lost == 2 and summary.backward.lost == 2 and summary.forward.lost == 0


def test_foreign_ssid_and_garbage_are_counted() -> None:
    sender = StampSender(record(), 7)
    sender.mark_sent(0, ns_to_ntp(NOW), ESTIMATE)
    other = ReflectorPacket(0, 1, 0x0101, 8, 1, 0, 1, 0x0101, 64).encode()
    assert sender.on_datagram(other, Stamp(NOW, False, 1.0), 64) is None
    assert sender.record.dropped.wrong_source == 1
    zero = ReflectorPacket(0, 1, 0x0101, 0, 1, 0, 1, 0x0101, 64).encode()
    assert sender.on_datagram(zero, Stamp(NOW, False, 1.0), 64) is not None
    assert sender.extras.ssid_zero == 1


@given(st.binary(max_size=200), st.booleans())
def test_garbage_replies_never_raise(data: bytes, keyed: bool) -> None:
    sender = StampSender(record(), 7, ALL, KEY if keyed else None)
    sender.mark_sent(0, ns_to_ntp(NOW), ESTIMATE)
    sender.on_datagram(data, Stamp(NOW, False, 1.0), None, None)
    unkeyed = StampSender(record(), 7, ALL)
    unkeyed.mark_sent(0, ns_to_ntp(NOW), ESTIMATE)
    base = ReflectorPacket(0, 1, 0x0101, 7, 1, 0, 1, 0x0101, 64, data).encode()
    unkeyed.on_datagram(base, Stamp(NOW, False, 1.0), None, None)
