"""The mesh grid: each pair's newest session judged against the thresholds.

Rows are sources, columns destinations, one grid per protocol. A cell has two
halves: round trip and loss (TWAMP), or the two directions (OWAMP: "to" and
"from" the destination, each judged on its one-way delay and its loss). A half
is ``ok``, ``warn`` (amber), ``bad`` (red), ``stale`` (no session ended within
``stale_after``), ``failed`` (the newest session failed) or ``none`` (never
measured in the window); ``reason`` says why in words, for the hover.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from otwamp.archive.rows import iso_time
from otwamp.results.report import format_times
from otwamp.results.stats import NS_PER_S
from otwamp.web.settings import DelayThresholds, Thresholds, WebSettings

State = Literal["ok", "warn", "bad", "stale", "failed", "none"]
SEVERITY: dict[State, int] = {"ok": 0, "warn": 1, "bad": 2}
HALVES = {"twamp": ("rtt", "loss"), "owamp": ("to", "from")}
Session = tuple[int, dict[str, Any]]  # (id, {column: value}) as query.latest returns them


@dataclass(frozen=True, slots=True)
class Half:
    """One half of a cell: its state, what it shows, why, and the session it comes from."""

    name: str  # "rtt", "loss", "to" or "from"
    state: State
    text: str
    reason: str
    session: int | None


@dataclass(frozen=True, slots=True)
class Cell:
    """The pair source -> destination of one protocol."""

    source: str
    destination: str
    protocol: str
    halves: tuple[Half, Half]
    last_ns: int


def percent(lost: int | None, measured: int | None) -> float | None:
    """Loss in percent of the packets whose fate is known; None if none is."""
    return None if lost is None or not measured else 100 * lost / measured


def _percent_text(value: float) -> str:
    return f"{value:.2f} %" if value < 10 else f"{value:.1f} %"


def _judge_delay(label: str, delay: float | None, limits: DelayThresholds) -> tuple[State, str]:
    if delay is None:
        return "ok", f"{label}: no delay measured"
    shown = f"{label} {format_times([delay])}"
    if limits.red is not None and delay > limits.red:
        return "bad", f"{shown} > {format_times([limits.red])} (red)"
    if limits.amber is not None and delay > limits.amber:
        return "warn", f"{shown} > {format_times([limits.amber])} (amber)"
    if limits.amber is not None:
        return "ok", f"{shown} (amber above {format_times([limits.amber])})"
    if limits.red is not None:
        return "ok", f"{shown} (red above {format_times([limits.red])})"
    return "ok", f"{shown} (no delay threshold set)"


def _judge_loss(values: dict[str, Any], thresholds: Thresholds) -> tuple[State, str, str]:
    lost, sent, discarded = (values[f"packets_{key}"] for key in ("lost", "sent", "discarded"))
    loss = percent(lost, None if sent is None else sent - (discarded or 0))
    if loss is None:
        return "ok", "-", "loss: no packet measured"
    text = _percent_text(loss)
    counted = f"loss {text} ({lost} of {sent - (discarded or 0)})"
    if loss > thresholds.loss_red * 100:
        return "bad", text, f"{counted} > {thresholds.loss_red * 100:g} % (red)"
    if loss > thresholds.loss_amber * 100:
        return "warn", text, f"{counted} > {thresholds.loss_amber * 100:g} % (amber)"
    return "ok", text, f"{counted} (amber above {thresholds.loss_amber * 100:g} %)"


def _worst(*states: State) -> State:
    return max(states, key=lambda state: SEVERITY[state])


def _greyed(values: dict[str, Any], now_ns: int, stale_after: int) -> tuple[State, str] | None:
    """Stale or failed, and why; None when the session's figures may be judged."""
    if now_ns - values["end_ns"] > stale_after * NS_PER_S:
        ago = (now_ns - values["end_ns"]) // NS_PER_S
        return "stale", f"stale: last session ended {ago} s ago ({iso_time(values['end_ns'])})"
    if values["failure"] is not None:
        return "failed", f"last session failed: {values['failure']}"
    return None


def _delay_text(delay: float | None, synchronized: bool | None) -> str:
    if delay is None:
        return "-"
    return format_times([delay]) + ("" if synchronized is not False else " ~")


def twamp_halves(
    session: Session, settings: WebSettings, now_ns: int, limits: DelayThresholds
) -> tuple[Half, Half]:
    """Round trip and loss of a TWAMP pair's newest session."""
    session_id, values = session
    delay = values["rtt_median"]
    loss_state, loss_text, loss_reason = _judge_loss(values, settings.thresholds)
    delay_state, delay_reason = _judge_delay("RTT median", delay, limits)
    greyed = _greyed(values, now_ns, settings.stale_after)
    rtt_text = _delay_text(delay, None)
    if values["sid"] is None:  # no session took place at all
        rtt_text = loss_text = "no session"
    if greyed is not None:
        state, reason = greyed
        return (
            Half("rtt", state, rtt_text, f"{reason}; {delay_reason}", session_id),
            Half("loss", state, loss_text, f"{reason}; {loss_reason}", session_id),
        )
    return (
        Half("rtt", delay_state, rtt_text, delay_reason, session_id),
        Half("loss", loss_state, loss_text, loss_reason, session_id),
    )


def owamp_half(
    name: str, session: Session | None, settings: WebSettings, now_ns: int, limits: DelayThresholds
) -> Half:
    """One direction of an OWAMP pair: its one-way delay and loss, judged together."""
    if session is None:
        return Half(name, "none", "", f"{name}: not measured", None)
    session_id, values = session
    delay, synchronized = values["fwd_delay_median"], values["fwd_sync"]
    loss_state, loss_text, loss_reason = _judge_loss(values, settings.thresholds)
    delay_state, delay_reason = _judge_delay(f"{name}: delay median", delay, limits)
    if synchronized is False:
        delay_reason += ", clocks not synchronized"
    text = f"{_delay_text(delay, synchronized)} {loss_text}"
    if values["sid"] is None:
        text = "no session"
    greyed = _greyed(values, now_ns, settings.stale_after)
    if greyed is not None:
        state, reason = greyed
        return Half(name, state, text, f"{reason}; {delay_reason}; {loss_reason}", session_id)
    state = _worst(delay_state, loss_state)
    return Half(name, state, text, f"{delay_reason}; {loss_reason}", session_id)


def _newest(candidates: Iterable[Session | None]) -> Session | None:
    found = [c for c in candidates if c is not None]
    return max(found, key=lambda c: (c[1]["start_ns"], c[0])) if found else None


def cells(sessions: Sequence[Session], settings: WebSettings, now_ns: int) -> list[Cell]:
    """The cells of every pair in ``sessions`` (each pair and direction's newest session)."""
    groups: dict[tuple[str, str, str], dict[str | None, Session]] = {}
    for session in sessions:
        values = session[1]
        key = (values["source"], values["destination"], values["protocol"])
        newest = _newest([groups.setdefault(key, {}).get(values["direction"]), session])
        assert newest is not None
        groups[key][values["direction"]] = newest
    found = []
    for (source, destination, protocol), by_direction in sorted(groups.items()):
        limits = settings.thresholds.delay_for(source, destination)
        if protocol == "twamp":
            session = by_direction[None]
            halves = twamp_halves(session, settings, now_ns, limits)
        else:  # a failed run has no direction: it is both directions' newest news
            failed = by_direction.get(None)
            to, from_ = (_newest([by_direction.get(way), failed]) for way in ("to", "from"))
            halves = (
                owamp_half("to", to, settings, now_ns, limits),
                owamp_half("from", from_, settings, now_ns, limits),
            )
        last = max(values["end_ns"] for _, values in by_direction.values())
        found.append(Cell(source, destination, protocol, halves, last))
    return found
