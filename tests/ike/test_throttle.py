"""Rate-limited log lines about floods."""

import logging

from otwamp.ike.throttle import ThrottledLog

LOG = logging.getLogger("otwamp.ike.test")


def test_one_line_per_cause_and_interval_with_counts(caplog):
    caplog.set_level(logging.WARNING, LOG.name)
    throttle = ThrottledLog(LOG, interval=10.0)
    assert throttle.get_timer() is None
    throttle.note("dropped", "10.0.0.1", 100.0)
    for second in range(1, 20):
        throttle.note("dropped", "10.0.0.2" if second % 3 else "10.0.0.1", 100.0 + second / 4)
    throttle.note("evicted", "10.0.0.3", 101.0)
    assert caplog.messages == [
        "dropped: 1 in 0 s from 1 source(s), most from 10.0.0.1 (1)",
        "evicted: 1 in 0 s from 1 source(s), most from 10.0.0.3 (1)",
    ]
    assert throttle.get_timer() == 110.0
    throttle.handle_timer(109.9)
    assert len(caplog.messages) == 2
    throttle.handle_timer(110.0)
    assert caplog.messages[2] == "dropped: 19 in 10 s from 2 source(s), most from 10.0.0.2 (13)"
    assert throttle.get_timer() is None  # nothing left to report
    throttle.note("dropped", "10.0.0.1", 115.0)
    assert len(caplog.messages) == 3 and throttle.get_timer() == 120.0
