"""TWAMP-Control set-up time: from the TCP connect to the Start-Ack, in each mode.

Measured in this process with ``time.perf_counter_ns`` against the ``otwamp
server`` subprocess. Each set-up runs otwamp's own client code in the order
``otwamp ping`` runs it (``otwamp.drivers.twamp_client``): connect, the
Server-Greeting, ``set_up`` of ``otwamp.drivers.control_client`` (mode
choice, the Count check, ``client_setup`` with ``os.urandom``, Set-Up-Response,
Server-Start), the test socket, ``_request`` (Request-TW-Session,
Accept-Session), then Start-Sessions and its Start-Ack. The clock stops at
the Start-Ack; Stop-Sessions and the close follow, untimed, so the server
releases the session at once (Timeout 0).

Two baselines run interleaved with the set-ups, in the same process and
event loop: PBKDF2-HMAC-SHA1 with the greeting's Count alone (a secured
set-up runs it twice in a row: the client to seal the Token, then the server
to open it), and a bare TCP connect and close to the same server.

``ikev2_setup_benchmark`` times the same set-ups with the IKEv2-derived key
of RFC 7717 (``IkeClientKeys`` over an embedded IKE initiator, the IKE SA set
up once before the timing: Mode carries 0x80, KeyID the SPIs) interleaved
with the pass-phrase key, in each secured mode, against an ``otwamp server``
on 127.0.0.2 that offers both (``--keyfile`` and ``--ike-config``).
"""

import asyncio
import contextlib
import os
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.procs import Secrets, otwamp_server
from bench.stats import JsonObject, distribution_us
from otwamp.control.events import StartAcked
from otwamp.control.twamp_client import TwampClientConnection
from otwamp.drivers.control_client import Control, PingSettings, check_accept, set_up
from otwamp.drivers.ike_lookup import EmbeddedLookup
from otwamp.drivers.twamp_client import _buffer_for, _padding, _request
from otwamp.drivers.udp import open_test_socket
from otwamp.errors import OtwampError
from otwamp.ike.config import load as load_ike_config
from otwamp.ike.service import IkeService
from otwamp.keys.ikev2 import IkeClientKeys, Policy
from otwamp.keys.passphrase import IdentityKeys, PassphraseFile
from otwamp.keys.source import ClientKeySource
from otwamp.security.kdf import derive_secret_key
from otwamp.wire.registry import MODE_NAMES, Accept, TwampMode

HOST = "127.0.0.1"
MODES = ("open", "authenticated", "encrypted", "mixed")
SECURED = ("authenticated", "encrypted", "mixed")
_BY_NAME = {name: mode for mode, name in MODE_NAMES.items()}
# What the client sends, in order; a mark is taken just before each send.
_SENT = ("Set-Up-Response", "Request-TW-Session", "Start-Sessions", "Stop-Sessions")
# Phases of one set-up: (name, from mark, to mark).
PHASES = (
    ("connect", "begin", "connected"),
    ("greeting", "connected", "Server-Greeting"),
    ("client_token", "Server-Greeting", "sent Set-Up-Response"),
    ("server_start", "sent Set-Up-Response", "Server-Start"),
    ("request_session", "Server-Start", "Accept-Session"),
    ("start_sessions", "Accept-Session", "Start-Ack"),
)
PHASE_NOTE = (
    "connect: open_connection until established; greeting: until the Server-Greeting "
    "is decoded; client_token: mode choice and client_setup (the client's PBKDF2, Token "
    "sealing, channels) until the Set-Up-Response is sent; server_start: the server's "
    "PBKDF2 and Token opening plus a round trip, until Server-Start is decrypted; "
    "request_session: the test socket, Request-TW-Session until Accept-Session; "
    "start_sessions: Start-Sessions until Start-Ack"
)


@dataclass(slots=True)
class SetUp:
    """One control set-up: timestamps (perf_counter_ns) by mark, and what went wrong."""

    mode: str
    marks: dict[str, int] = field(default_factory=dict)
    count: int | None = None  # the greeting's PBKDF2 Count
    key_source: str | None = None  # "passphrase" or "ikev2" (None in open mode)
    mode_word: int | None = None  # the Set-Up-Response's Mode (0x80 set: IKEv2-derived)
    error: str | None = None

    @property
    def total_ns(self) -> int | None:
        """From the connect call to the Start-Ack."""
        if self.error is not None or "Start-Ack" not in self.marks:
            return None
        return self.marks["Start-Ack"] - self.marks["begin"]

    def phase_ns(self, start: str, end: str) -> int | None:
        """Nanoseconds between two marks, None if either is missing."""
        if self.error is not None or start not in self.marks or end not in self.marks:
            return None
        return self.marks[end] - self.marks[start]


@dataclass(frozen=True, slots=True)
class Variant:
    """One kind of set-up to time: a mode, and the client's key source for it."""

    mode: str
    keys: ClientKeySource | None = None  # None in open mode


class _TimedControl(Control[TwampClientConnection]):
    """The client's control connection, marking the time of each send and event."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        timeout: float,
        marks: dict[str, int],
    ) -> None:
        super().__init__(reader, writer, timeout, TwampClientConnection())
        self.marks = marks
        self._sent = 0

    # Pass any further arguments through: only the message and its name matter here.
    async def send(self, data: bytes, *args: Any, **kwargs: Any) -> None:
        what = _SENT[self._sent] if self._sent < len(_SENT) else f"message {self._sent + 1}"
        self._sent += 1
        self.marks[f"sent {what}"] = time.perf_counter_ns()
        await super().send(data, *args, **kwargs)

    async def receive(self, what: str, *args: Any, **kwargs: Any) -> object:
        event = await super().receive(what, *args, **kwargs)
        self.marks[what] = time.perf_counter_ns()
        return event


async def _set_up_once(host: str, port: int, variant: Variant) -> SetUp:
    """One set-up of ``variant``, as ``otwamp ping HOST:PORT -A MODE`` performs it."""
    result = SetUp(variant.mode)
    settings = PingSettings(
        host=host,
        port=port,
        count=100,
        wait=0.0,
        modes=(_BY_NAME[variant.mode],),
        keys=variant.keys,
    )
    marks = result.marks
    marks["begin"] = time.perf_counter_ns()
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port), settings.control_timeout
        )
    except OSError as exc:
        result.error = f"connect: {exc}"
        return result
    marks["connected"] = time.perf_counter_ns()
    control = _TimedControl(reader, writer, settings.control_timeout, marks)
    try:
        await _negotiate(control, settings, result)
    except (OtwampError, OSError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return result


async def _negotiate(
    control: Control[TwampClientConnection], settings: PingSettings, result: SetUp
) -> None:
    """Greeting to Start-Ack with otwamp's client code; then Stop-Sessions."""
    local = control.writer.get_extra_info("sockname")
    peer = control.writer.get_extra_info("peername")
    security = await set_up(control, settings, peer[0], int(TwampMode.IKEV2_DERIVED))
    if control.machine.greeting is not None:
        result.count = control.machine.greeting.count
    result.key_source, result.mode_word = security.key_source, security.mode_word
    if MODE_NAMES[security.mode] != result.mode:
        raise OtwampError(f"asked for {result.mode}, got {MODE_NAMES[security.mode]}")
    protected = security.mode in (TwampMode.AUTHENTICATED, TwampMode.ENCRYPTED)
    padding = _padding(settings, protected)
    sock = open_test_socket(
        local[0], 0, socket.AF_INET, settings.dscp, _buffer_for(settings.count, padding)
    )
    try:
        await _request(control, settings, padding, local[0], peer[0], sock.getsockname()[1])
        await control.send(control.machine.start_sessions())
        ack = await control.receive("Start-Ack")
        assert isinstance(ack, StartAcked)
        check_accept(ack.ack.accept, "Start-Sessions")
        await control.send(control.machine.stop_sessions(Accept.OK, 1))
    finally:
        sock.close()


async def _tcp_once(host: str, port: int) -> tuple[int, int]:
    """A bare connect and close to the server: (ns to established, ns to closed)."""
    began = time.perf_counter_ns()
    _reader, writer = await asyncio.open_connection(host, port)
    connected = time.perf_counter_ns()
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return connected - began, time.perf_counter_ns() - began


def _pbkdf2_once(secret: bytes, count: int) -> int:
    """Nanoseconds of one PBKDF2-HMAC-SHA1 with ``count`` iterations (a fresh Salt)."""
    salt = os.urandom(16)
    began = time.perf_counter_ns()
    derive_secret_key(secret, salt, count)
    return time.perf_counter_ns() - began


@dataclass(slots=True)
class _Samples:
    setups: dict[str, list[SetUp]] = field(default_factory=dict)  # by variant name
    first: dict[str, SetUp] = field(default_factory=dict)  # the cold first set-up per variant
    tcp_connect_ns: list[int] = field(default_factory=list)
    tcp_connect_close_ns: list[int] = field(default_factory=list)
    pbkdf2_ns: list[int] = field(default_factory=list)


def _passphrase_keys(secrets: Secrets) -> IdentityKeys:
    return IdentityKeys(PassphraseFile.load(secrets.keyfile), secrets.identity)


async def _measure(
    host: str,
    port: int,
    secrets: Secrets,
    variants: dict[str, Variant],
    rounds: int,
    warmup: int,
) -> _Samples:
    """``warmup + rounds`` rounds of one set-up per variant and the baselines, rotating."""
    samples = _Samples(setups={name: [] for name in variants})
    steps = ("tcp", "pbkdf2", *variants)
    for number in range(warmup + rounds):
        counted = number >= warmup
        shift = number % len(steps)  # rotate the order so no step always follows another
        for step in steps[shift:] + steps[:shift]:
            if step == "tcp":
                connect, close = await _tcp_once(host, port)
                if counted:
                    samples.tcp_connect_ns.append(connect)
                    samples.tcp_connect_close_ns.append(close)
            elif step == "pbkdf2":
                elapsed = _pbkdf2_once(secrets.passphrase, secrets.count)
                if counted:
                    samples.pbkdf2_ns.append(elapsed)
            else:
                setup = await _set_up_once(host, port, variants[step])
                samples.first.setdefault(step, setup)
                if counted:
                    samples.setups[step].append(setup)
    return samples


def _ms(value_us: float | None) -> float | None:
    return None if value_us is None else round(value_us / 1000, 3)


def _mode_summary(runs: list[SetUp], first: SetUp | None) -> JsonObject:
    totals = [t for t in (run.total_ns for run in runs) if t is not None]
    setup = distribution_us(totals)
    phases: JsonObject = {}
    for name, start, end in PHASES:
        values = [v for v in (run.phase_ns(start, end) for run in runs) if v is not None]
        spread = distribution_us(values)
        phases[name] = None if spread is None else spread["median_us"]
    errors = [run.error for run in runs if run.error is not None]
    return {
        "runs": len(runs),
        "completed": len(totals),
        "median_ms": _ms(None if setup is None else setup["median_us"]),
        "p95_ms": _ms(None if setup is None else setup["p95_us"]),
        "max_ms": _ms(None if setup is None else setup["max_us"]),
        "setup": setup,
        "phases_median_us": phases,
        "first_in_process_ms": None
        if first is None or first.total_ns is None
        else round(first.total_ns / 1e6, 3),
        "pbkdf2_counts": sorted({run.count for run in runs if run.count is not None}),
        "key_sources": sorted({run.key_source for run in runs if run.key_source is not None}),
        "mode_words": sorted(
            {f"{run.mode_word:#04x}" for run in runs if run.mode_word is not None}
        ),
        "errors": errors[:5],
        "error_count": len(errors),
    }


def _summaries(samples: _Samples) -> dict[str, JsonObject]:
    return {
        name: _mode_summary(runs, samples.first.get(name)) for name, runs in samples.setups.items()
    }


def _baselines(samples: _Samples, count: int) -> JsonObject:
    return {
        f"pbkdf2_hmac_sha1_count_{count}": distribution_us(samples.pbkdf2_ns),
        "tcp_connect": distribution_us(samples.tcp_connect_ns),
        "tcp_connect_close": distribution_us(samples.tcp_connect_close_ns),
    }


def setup_benchmark(port: int, secrets: Secrets, rounds: int, warmup: int = 2) -> JsonObject:
    """Set-up times per mode with their same-run baselines, as one JSON object."""
    keys = _passphrase_keys(secrets)
    variants = {mode: Variant(mode, None if mode == "open" else keys) for mode in MODES}
    samples = asyncio.run(_measure(HOST, port, secrets, variants, rounds, warmup))
    modes = _summaries(samples)
    pbkdf2 = distribution_us(samples.pbkdf2_ns)
    tcp_close = distribution_us(samples.tcp_connect_close_ns)
    pbkdf2_median = None if pbkdf2 is None else pbkdf2["median_us"]
    tcp_median = None if tcp_close is None else tcp_close["median_us"]
    comparison: JsonObject = {}
    for mode, summary in modes.items():
        setup = summary["setup"]
        median = None if setup is None else setup["median_us"]
        excess = None if median is None or tcp_median is None else round(median - tcp_median, 1)
        part: JsonObject = {"setup_median_us": median, "over_tcp_connect_close_us": excess}
        if mode != "open":
            part["two_pbkdf2_us"] = None if pbkdf2_median is None else round(2 * pbkdf2_median, 1)
            part["over_tcp_and_two_pbkdf2_us"] = (
                None
                if excess is None or pbkdf2_median is None
                else round(excess - 2 * pbkdf2_median, 1)
            )
        comparison[mode] = part
    return {
        "note": (
            "set-up: perf_counter from the TCP connect call to the decoded Start-Ack, "
            "in this process with otwamp's client code, against the otwamp server process; "
            "baselines interleaved with the set-ups in the same event loop"
        ),
        "rounds": rounds,
        "warmup_rounds": warmup,
        "pbkdf2_count": secrets.count,
        "modes": modes,
        "phases_note": PHASE_NOTE,
        "baseline": _baselines(samples, secrets.count),
        "comparison": comparison,
    }


# --- the IKEv2-derived key (RFC 7717) against the pass-phrase ------------------------------

CLIENT_HOST, SERVER_HOST = "127.0.0.1", "127.0.0.2"
CLIENT_ID, SERVER_ID = "fqdn:client.bench.test", "fqdn:server.bench.test"
IKEV2_TOLERANCE = 0.10  # the ikev2 median may exceed the pass-phrase median by this share
SOURCES = ("ikev2", "passphrase")


def _free_udp_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _ike_configs(directory: Path) -> tuple[Path, Path]:
    """The client's (initiator) and the server's (responder) IKE TOML, one fresh PSK."""
    psk = os.urandom(24).hex()
    ends = {
        "client": (CLIENT_HOST, _free_udp_port(CLIENT_HOST), CLIENT_ID),
        "server": (SERVER_HOST, _free_udp_port(SERVER_HOST), SERVER_ID),
    }
    paths = []
    for me, peer in (("client", "server"), ("server", "client")):
        (address, port, identity), (peer_address, peer_port, peer_id) = ends[me], ends[peer]
        path = directory / f"{me}-ike.toml"
        path.write_text(
            f'[local]\naddress = "{address}"\nport = {port}\nid = "{identity}"\n\n'
            f'[[peers]]\nid = "{peer_id}"\naddress = "{peer_address}"\nport = {peer_port}\n'
            f'psk = "{psk}"\n',
            encoding="ascii",
        )
        path.chmod(0o600)
        paths.append(path)
    return paths[0], paths[1]


async def _measure_ikev2(
    port: int, secrets: Secrets, ike_config: Path, rounds: int, warmup: int
) -> tuple[_Samples, JsonObject]:
    """Establish the IKE SA with an embedded initiator, then time both key sources."""
    service = IkeService(load_ike_config(ike_config))
    await service.start()
    try:
        ike = IkeClientKeys(EmbeddedLookup(service), Policy.INITIATE)
        began = time.perf_counter_ns()
        credentials = await ike.credentials_for(SERVER_HOST)  # sets up the IKE SA
        sa: JsonObject = {
            "spis": credentials.label,
            "established_ms": round((time.perf_counter_ns() - began) / 1e6, 3),
        }
        passphrase = _passphrase_keys(secrets)
        variants = {
            f"{source} {mode}": Variant(mode, ike if source == "ikev2" else passphrase)
            for mode in SECURED
            for source in SOURCES
        }
        samples = await _measure(SERVER_HOST, port, secrets, variants, rounds, warmup)
        sa["ike_sas_at_end"] = len(service.daemon.database.all())  # still the one
    finally:
        await service.stop()
    return samples, sa


def _versus(ikev2: JsonObject, passphrase: JsonObject) -> JsonObject:
    figures: JsonObject = {}
    for stat in ("median_ms", "p95_ms", "max_ms"):
        ours, theirs = ikev2[stat], passphrase[stat]
        figures[stat] = {
            "ikev2": ours,
            "passphrase": theirs,
            "ratio": None if ours is None or not theirs else round(ours / theirs, 3),
        }
    return figures


def ikev2_setup_benchmark(secrets: Secrets, rounds: int, warmup: int = 2) -> JsonObject:
    """Set-up times with the IKEv2-derived key and with the pass-phrase, per secured mode.

    One ``otwamp server`` on 127.0.0.2 offers the secured modes with both key
    sources (``--keyfile`` and an embedded IKE responder, ``--ike-config``);
    this process runs an embedded IKE initiator on 127.0.0.1 (PSK), sets up
    the IKE SA once before any timing (the first ``credentials_for``), then
    times the set-ups of both key sources in every secured mode interleaved,
    exactly as ``setup_benchmark`` times the pass-phrase modes.
    """
    with tempfile.TemporaryDirectory(prefix="otwamp-bench-ikev2-") as name:
        client_config, server_config = _ike_configs(Path(name))
        server = otwamp_server(
            secrets,
            host=SERVER_HOST,
            modes=",".join(SECURED),
            extra=["--ike-config", str(server_config)],
        )
        with server as port:
            samples, sa = asyncio.run(_measure_ikev2(port, secrets, client_config, rounds, warmup))
    summaries = _summaries(samples)
    modes: JsonObject = {}
    for mode in SECURED:
        ikev2, passphrase = summaries[f"ikev2 {mode}"], summaries[f"passphrase {mode}"]
        modes[mode] = {
            "versus": _versus(ikev2, passphrase),
            "ikev2": ikev2,
            "passphrase": passphrase,
        }
    return {
        "note": (
            "set-up: perf_counter from the TCP connect call to the decoded Start-Ack, "
            f"client {CLIENT_HOST} (this process, otwamp's client code) to the otwamp server "
            f"process on {SERVER_HOST}, which offers both key sources; ikev2: the RFC 7717 key "
            "of an IKE SA set up (PSK) before the timing by an embedded initiator in this "
            "process, Mode with 0x80 and KeyID = SPIi|SPIr|0; passphrase: -u/-k; both key "
            "sources and the baselines interleaved in the same event loop"
        ),
        "rounds": rounds,
        "warmup_rounds": warmup,
        "pbkdf2_count": secrets.count,
        "tolerance": IKEV2_TOLERANCE,
        "ike_sa": sa,
        "modes": modes,
        "phases_note": PHASE_NOTE,
        "baseline": _baselines(samples, secrets.count),
    }
