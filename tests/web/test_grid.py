"""The grid's judgement (otwamp/web/grid.py) and the dashboard's settings (settings.py),
at the thresholds' edges; and `otwamp web`'s one-line refusals."""

import pytest

from otwamp.errors import ConfigError
from otwamp.web.grid import cells
from otwamp.web.settings import DelayThresholds, Thresholds, WebSettings, web_settings
from tests.e2e.processes import run_cli

NOW = 1_800_000_000 * 10**9
SECOND = 10**9


def session(session_id=1, *, lost=0, sent=1000, delay=0.01, end=NOW, failure=None, **more):
    values = {
        "source": "a",
        "destination": "b",
        "protocol": "twamp",
        "direction": None,
        "start_ns": end - SECOND,
        "end_ns": end,
        "failure": failure,
        "sid": "00" * 16,
        "packets_sent": sent,
        "packets_lost": lost,
        "packets_discarded": 0,
        "rtt_median": delay,
        "fwd_delay_median": delay,
        "fwd_sync": True,
    }
    return session_id, values | more


DEFAULTS = WebSettings()


def states(sessions, settings=DEFAULTS):
    return [tuple(half.state for half in cell.halves) for cell in cells(sessions, settings, NOW)]


@pytest.mark.parametrize(
    ("lost", "state"), [(0, "ok"), (1, "ok"), (2, "warn"), (10, "warn"), (11, "bad")]
)
def test_loss_is_amber_above_a_tenth_of_a_percent_and_red_above_one(lost, state):
    assert states([session(lost=lost)]) == [("ok", state)]


def test_delay_thresholds_per_pair_override_the_global_ones():
    thresholds = Thresholds(
        delay=DelayThresholds(amber=0.005, red=0.02),
        pairs={("a", "c"): DelayThresholds(amber=0.5)},
    )
    settings = WebSettings(thresholds=thresholds)
    found = states(
        [
            session(1, delay=0.004),
            session(2, delay=0.01, destination="c"),
            session(3, delay=0.03, source="x"),
            session(4, delay=0.01, source="y"),
        ],
        settings,
    )
    assert found == [("ok", "ok"), ("ok", "ok"), ("bad", "ok"), ("warn", "ok")]


def test_stale_and_failed_are_greyed_with_the_reason():
    settings = WebSettings(stale_after=60)
    old = session(end=NOW - 61 * SECOND)
    (cell,) = cells([old], settings, NOW)
    assert [h.state for h in cell.halves] == ["stale", "stale"]
    assert cell.halves[0].reason.startswith("stale: last session ended 61 s ago")
    failed = session(failure="timed out", sid=None, rtt_median=None, packets_sent=None)
    (cell,) = cells([failed], settings, NOW)
    assert [(h.state, h.text) for h in cell.halves] == [("failed", "no session")] * 2
    assert cell.halves[1].reason.startswith("last session failed: timed out")


def test_owamp_halves_are_the_directions_and_a_failed_run_greys_both():
    to = session(1, protocol="owamp", direction="to", lost=50)
    from_ = session(2, protocol="owamp", direction="from", fwd_sync=False)
    assert states([to, from_]) == [("bad", "ok")]
    (cell,) = cells([to, from_], DEFAULTS, NOW)
    assert cell.halves[1].text.endswith("~ 0.00 %") and "not synchronized" in cell.halves[1].reason
    later = session(3, protocol="owamp", failure="refused", sid=None, end=NOW + 1)
    assert states([to, from_, later]) == [("failed", "failed")]
    assert states([to]) == [("bad", "none")]


def test_settings_from_a_table_and_flags():
    settings = web_settings(
        {
            "listen": "[::1]:9000",
            "loss_amber": 0.5,
            "stale_after": "5m",
            "pairs": [{"source": "a", "destination": "b", "delay_red": 20}],
        },
        {"loss_red": 2.0, "delay_amber": 3, "refresh": None},
    )
    assert settings.listen == ("::1", 9000)
    assert settings.thresholds.loss_amber == 0.005 and settings.thresholds.loss_red == 0.02
    assert settings.thresholds.delay == DelayThresholds(amber=0.003)
    assert settings.thresholds.delay_for("a", "b") == DelayThresholds(red=0.02)
    assert (settings.stale_after, settings.refresh) == (300, 10)
    assert WebSettings().listen == ("127.0.0.1", 8862)  # loopback unless asked


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"colour": "red"}, "unknown [web] keys: colour"),
        ({"loss_amber": 2, "loss_red": 1}, "loss_amber must not be above loss_red"),
        ({"loss_red": "high"}, "loss_red must be a number"),
        ({"delay_amber": 5, "delay_red": 1}, "delay_amber must not be above delay_red"),
        ({"pairs": [{"source": "a"}]}, "needs a source and a destination"),
        ({"pairs": [{"source": "a", "destination": "b", "x": 1}]}, "unknown [[web.pairs]] keys"),
        ({"stale_after": "soon"}, "is not a duration"),
        ({"refresh": 0}, "refresh must be a positive number"),
        ({"listen": "[::1"}, "closing ']'"),
    ],
)
def test_bad_settings_are_refused_with_a_reason(table, message):
    with pytest.raises(ConfigError, match=None) as refused:
        web_settings(table)
    assert message in str(refused.value)


def test_the_command_refuses_in_one_line(tmp_path):
    missing = run_cli("web", "--archive", str(tmp_path / "none.db"))
    assert (missing.returncode, missing.stderr) == (
        1,
        f"otwamp: {tmp_path / 'none.db'}: no such archive\n",
    )
    config = tmp_path / "web.toml"
    config.write_text("[web]\nloss_red = -1\n")
    bad = run_cli("web", "--config", str(config), "--archive", str(tmp_path / "none.db"))
    assert (bad.returncode, bad.stderr) == (1, "otwamp: loss_red must be a number >= 0, not -1\n")
