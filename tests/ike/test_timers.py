"""The IKE machines' timers, with time passed in (RFC 7296 §2.1, §2.4, §2.8)."""

from otwamp.ike.events import Deleted, Output, TimedOut
from otwamp.ike.session import SessionState
from otwamp.ike.timers import Lifetime, Lifetimes, Retransmission

from .pairing import NOW, established, make_pair


def test_retransmission_backs_off_exponentially_until_the_deadline():
    timer = Retransmission(100.0, 110.0)
    times = []
    while (due := timer.get_timer()) < timer.deadline:
        assert not timer.resend_due(due - 0.001)
        assert timer.resend_due(due)
        times.append(due - 100.0)
    assert times == [0.5, 1.5, 3.5, 7.5] and timer.get_timer() == 110.0


def test_a_late_timer_resends_once_for_every_missed_resend():
    timer = Retransmission(100.0, 110.0)
    assert timer.resend_due(104.0)  # 100.5, 101.5 and 103.5 have passed: one resend
    assert timer.get_timer() == 107.5


def test_a_short_deadline_comes_before_the_next_resend():
    assert Retransmission(100.0, 100.3).get_timer() == 100.3
    assert Retransmission(100.0, 110.0).restarted(104.0) == Retransmission(104.0, 110.0)


def test_lifetime_schedule():
    life = Lifetime.start(Lifetimes(100.0, 110.0, 10.0), 1000.0, 0.25)
    assert (life.rekey_at, life.expire_at, life.retry, life.delete_timeout) == (
        1097.5,
        1110.0,
        10.0,
        10.0,
    )
    life.retry_later(1105.0)
    assert life.rekey_at == 1110.0  # never past the end


def test_session_resends_the_same_request_then_declares_the_peer_dead():
    session = established(make_pair()).initiator.session
    assert session.get_timer() is None  # no request, no lifetime
    request = session.liveness(NOW, timeout=2.0)
    assert session.get_timer() == NOW + 0.5
    assert session.handle_timer(NOW + 0.4) == Output()
    assert session.handle_timer(NOW + 0.5) == Output((request,))
    assert session.get_timer() == NOW + 1.5
    assert session.handle_timer(NOW + 1.5) == Output((request,))
    assert session.get_timer() == NOW + 2.0
    output = session.handle_timer(NOW + 2.0)
    reason = "no answer from 10.98.0.1:500 within 2 s"
    sa = session.sa
    assert output == Output(
        events=(TimedOut(reason), Deleted(sa.spi_i, sa.spi_r, f"dead ({reason})"))
    )
    assert session.state is SessionState.CLOSED and session.get_timer() is None


def test_an_answer_stops_the_retransmission():
    pair = established(make_pair())
    session = pair.initiator.session
    reply = pair.responder.session.receive(session.liveness(NOW), NOW)
    assert session.receive(reply.datagrams[0], NOW + 0.1) == Output()
    assert session.get_timer() is None


def test_responder_half_open_timer_starts_with_the_first_request():
    pair = make_pair()
    assert pair.responder.get_timer() is None
    pair.responder.receive(pair.initiator.start(NOW), NOW)
    assert pair.responder.get_timer() == NOW + 30.0
    assert pair.initiator.get_timer() == NOW + 0.5
