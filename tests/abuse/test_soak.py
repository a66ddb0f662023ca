"""The soak in short (issue 10): ``python -m bench.soak`` for 45 s with 20 measurements at once.

The same driver as ``make soak`` (10 minutes, 100 at once): a real ``otwamp
server`` with an embedded IKE responder, ``otwamp ping``/``owping`` clients in
every mode and key source, some SIGKILLed mid-session, a stray-packet flood
at the test ports and a lag probe on the control port. Run with ``-s`` to see
the JSON figures.
"""

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[2]
DURATION = 45  # seconds of load, after which the last sessions end (at most ~30 s)
CONCURRENCY = 20
FLOOD_PPS = 5000
KINDS = 17  # TWAMP: open, and 3 secured modes x 3 key sources; OWAMP: open, and 2 x 3
RUN_TIMEOUT = 200.0  # seconds for the whole run: load, drain, start and stop
# Measured here (2 cores shared with other test suites), 20 sessions at once, five runs: the
# probe's max was 18-127 ms (the highest while the clients start), p99 4-14 ms; the control
# (a process that only greets) 6-7 ms. 200 ms leaves room for a busy machine and still catches
# a blocked loop (issue 10, S2: a schedule computed in one go blocked it for 1.15 s).
LAG_MAX_MS = 200.0
# What a session may fail with under this load without the server being at fault: none seen.
EXPECTED_UNDER_LOAD: frozenset[str] = frozenset()


@pytest.fixture(scope="module")
def soak() -> dict[str, Any]:
    """The soak's JSON object (printed, so that ``-s`` shows the figures)."""
    command = [sys.executable, "-m", "bench.soak", "--duration", str(DURATION)]
    command += ["--concurrency", str(CONCURRENCY), "--flood-pps", str(FLOOD_PPS)]
    command += ["--kill-share", "0.1"]  # about 12 of ~120 sessions: never none (0.9**120)
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        out, err = process.communicate(timeout=RUN_TIMEOUT)
    finally:
        if process.poll() is None:  # a timeout, or pytest's: let the driver clean up
            process.send_signal(signal.SIGTERM)
            try:
                process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
    assert out.strip(), f"the soak printed nothing (exit {process.returncode}):\n{err}"
    document: dict[str, Any] = json.loads(out)
    print(json.dumps(document, indent=2))
    return document


def test_the_server_survives_and_shuts_down_cleanly(soak: dict[str, Any]) -> None:
    server = soak["server"]
    assert not server["crashed"], server
    assert server["exit_status_on_sigterm"] == 0, server  # S8: a clean shutdown
    log = soak["server_log"]
    assert log["tracebacks"] == 0, "\n".join(log["first_traceback"] or [])


def test_every_session_completes_or_fails_for_an_expected_cause(soak: dict[str, Any]) -> None:
    sessions = soak["sessions"]
    unexpected = set(sessions["failures_by_cause"]) - EXPECTED_UNDER_LOAD
    assert not unexpected, sessions["failed_kinds_by_cause"]
    assert sessions["still_running_at_the_end"] == 0, sessions
    # The load really ran: every kind of client, about CONCURRENCY of them at once, some killed.
    assert sessions["completed"] >= 50, sessions
    assert len(sessions["by_kind"]) == KINDS, sessions["by_kind"]
    assert soak["clients"]["concurrency"]["mean_after_warmup"] >= 0.9 * CONCURRENCY, soak
    assert sessions["killed"] >= 1, sessions


def test_memory_and_fds_stay_bounded_after_warmup(soak: dict[str, Any]) -> None:
    footprint = soak["server"]["footprint"]
    growth = footprint["growth_after_warmup"]
    assert growth["middle"]["rss"] <= 1.10 and growth["end"]["rss"] <= 1.10, footprint
    # The fd count follows the sessions in flight (a few each, 20 at once), so in a short
    # run it varies by more than 10 % with no leak (54 -> 60 seen); a leak shows once the
    # clients are gone: their sockets must be too. `make soak` keeps the 10 % rule for both.
    assert soak["server"]["idle_after_drain"]["fds"] <= soak["server"]["idle_before_load"]["fds"]


def test_the_event_loop_answers_within_the_bound(soak: dict[str, Any]) -> None:
    lag = soak["event_loop_lag"]
    assert not lag["failed"], lag
    assert lag["probes"] >= 5 * DURATION, lag  # a probe every 100 ms
    assert lag["max_ms"] < LAG_MAX_MS, lag


def test_the_flood_ran_and_the_log_stays_rate_limited(soak: dict[str, Any]) -> None:
    assert soak["flood"]["achieved_pps"] >= 0.8 * FLOOD_PPS, soak["flood"]
    # otwamp.lograte lets BURST (5) lines of a cause through a second, then one summary.
    for cause in soak["server_log"]["by_cause"]:
        assert cause["max_per_second"] <= 12, cause
