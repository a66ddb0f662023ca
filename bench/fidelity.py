"""``python -m bench.fidelity``: how far each timestamp is from the wire (issue 15).

A session of ``otwamp ping`` / ``otwamp owping`` (separate processes, as an
operator runs them) against ``otwamp server`` on a loopback address of its
own runs under a capture: an AF_PACKET socket on ``lo`` in this process,
SO_TIMESTAMPNS, so every packet of the session has the kernel's nanosecond
time of its passage through the device, the reference. Packets are matched
to the ``--raw --json`` records by order (loopback neither loses nor
reorders; the counts are checked): the n-th sender packet on the wire is
sender sequence number n, the n-th reflected packet reflector number n.

TWAMP, per packet (µs): ``t1_lead`` = capture(sender packet) - T1 in the
packet, ``t1_record_lead`` the same for the T1 the sender recorded (the
kernel's transmit time when it had one), ``t2_lag`` = T2 - capture(sender
packet), ``t3_lead`` = capture(reflected packet) - T3, ``t4_lag`` = T4 -
capture(reflected packet), ``processing`` = T3 - T2. OWAMP, per direction:
``send_lead`` = capture - send Timestamp, ``receive_lag`` = receive time -
capture. Each in open, authenticated and encrypted mode at 10, 100 and
1,000 pps; median, p99 and max, with the issue's targets and whether each is
met. STAMP (``stamp_followup``, issue 13): ``otwamp stamp --tlv follow-up``
against a stateful reflector, open mode; ``t3_lead`` = capture(reflected
packet) - the T3 in it, ``followup_t3_lead`` = capture(reflected packet n) -
the Follow-Up Timestamp packet n+1 reports for it (RFC 8972 §4.7), and
whether the latter's median is the nearer to the wire. Exit status as
``python -m bench``: 0 all met, 1 one missed, 2 could not run. Needs root
(AF_PACKET).
"""

import argparse
import datetime
import json
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

from bench.cfloor import compiled, floor_session
from bench.machine import finish_run, machine_facts
from bench.procs import BenchError, Secrets, bench_secrets, otwamp_command, otwamp_server
from bench.procs import security_arguments as _security
from bench.stamp import stamp_reflector
from bench.stats import JsonObject, distribution_us
from bench.twamp import log
from otwamp.drivers import stampsend
from otwamp.wire.timestamp import ns_to_ntp, ntp_to_ns

HOST = "127.0.15.2"  # the server's loopback address: no other traffic on lo uses it
MODES = ("open", "authenticated", "encrypted")
RATES = (10, 100, 1_000)  # pps
SECONDS = {10: 6.0, 100: 5.0, 1_000: 3.0}  # session length per rate (full run)
QUICK_SECONDS = {10: 2.0, 100: 2.0, 1_000: 1.0}
LEAD_MEDIAN_US, LEAD_P99_US = 2.5, 15.0  # in-packet T1 and T3, OWAMP send and receive
RECORD_T1_MEDIAN_US = 1.0  # the T1 the sender records (kernel transmit time)
PROCESSING_MEDIAN_US, PROCESSING_RATE = 12.0, 100
_ETH_P_IP = 0x0800
_SO_TIMESTAMPNS = 35
_SO_RCVBUFFORCE = 33
_TIMESPEC = struct.Struct("@qq")
_SERVER = socket.inet_aton(HOST)
# Where a test packet's own Timestamp is, by mode, when it is in the clear
# (RFC 4656 §4.1.2, RFC 5357 §4.1.2 and §4.2.1: the same offset both ways).
_STAMP_AT = {"open": 4, "authenticated": 16}


@dataclass(slots=True)
class Capture:
    """UDP packets to or from ``HOST`` on ``lo``: (capture ns, from the server, payload)."""

    packets: list[tuple[int, bool, bytes]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    error: str | None = None

    def run(self, sock: socket.socket) -> None:
        """Read ``sock`` until ``stop`` and then until it has nothing queued."""
        space = socket.CMSG_SPACE(_TIMESPEC.size)
        while True:
            try:
                data, ancdata, _flags, _address = sock.recvmsg(2048, space)
            except TimeoutError:
                if self.stop.is_set():
                    return
                continue
            if len(data) < 28 or data[9] != socket.IPPROTO_UDP:
                continue
            source, destination = data[12:16], data[16:20]
            if _SERVER not in (source, destination) or not ancdata:
                continue
            secs, nsecs = _TIMESPEC.unpack_from(ancdata[0][2])
            header = (data[0] & 0x0F) * 4
            self.packets.append(
                (secs * 1_000_000_000 + nsecs, source == _SERVER, data[header + 8 :])
            )

    def match(self, by_server: bool, stamps_ns: list[int], mode: str, what: str) -> list[int]:
        """Capture times of the packets the server (True) or the client (False) sent.

        One per stamp in ``stamps_ns`` (each packet's own Timestamp, in order
        of sending). In open and authenticated mode the Timestamp is in the
        clear and names its packet; in encrypted mode the n-th packet is the
        n-th stamp, and the counts must agree.
        """
        wire = [(when, payload) for when, server, payload in self.packets if server == by_server]
        offset = _STAMP_AT.get(mode)
        if offset is None:
            if len(wire) != len(stamps_ns):
                raise BenchError(f"{what}: {len(wire)} captured, {len(stamps_ns)} recorded")
            return [when for when, _payload in wire]
        by_stamp = {
            ntp_to_ns(int.from_bytes(payload[offset : offset + 8])): when
            for when, payload in wire
            if len(payload) >= offset + 8
        }
        missing = [stamp for stamp in stamps_ns if stamp not in by_stamp]
        if missing:
            raise BenchError(f"{what}: {len(missing)} of {len(stamps_ns)} not captured")
        return [by_stamp[stamp] for stamp in stamps_ns]


@contextmanager
def capturing() -> Iterator[Capture]:
    """A capture on ``lo`` in a thread of this process, for the ``with`` body and 0.2 s more."""
    try:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(_ETH_P_IP))
    except PermissionError:
        raise BenchError("the capture needs root (AF_PACKET)") from None
    capture = Capture()
    with sock:
        sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, 64 << 20)  # past rmem_max (root)
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        sock.bind(("lo", 0))
        sock.settimeout(0.05)
        thread = threading.Thread(target=capture.run, args=(sock,), daemon=True)
        thread.start()
        try:
            yield capture
        finally:
            time.sleep(0.2)
            capture.stop.set()
            thread.join()


def _client(
    program: str, port: int, count: int, rate: int, extra: Sequence[str]
) -> list[JsonObject]:
    """Run ``otwamp PROGRAM HOST:PORT ... --raw --json``; its per-packet records."""
    command = [*otwamp_command(), program, f"{HOST}:{port}", *extra]
    command += ["-c", str(count), "-i", repr(1.0 / rate), "--wait", "1", "--raw", "--json"]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=count / rate + 60, check=False
    )
    if done.returncode != 0:
        reason = done.stderr.strip().splitlines()
        raise BenchError(f"otwamp {program}: {reason[-1] if reason else done.returncode}")
    return [json.loads(line) for line in done.stdout.splitlines()]


# The floor of t1_lead: a bare Python sender, ``time.time_ns()`` then ``send`` of a
# 41-octet datagram whose octets 4-11 are that time as an NTP Timestamp.
_BARE_SENDER = """
import socket, sys, time
from otwamp.wire.timestamp import ns_to_ntp
count, interval, port = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.connect((sys.argv[4], port))
packet = bytearray(41)
began = time.perf_counter()
for seq in range(count):
    time.sleep(max(began + seq * interval - time.perf_counter(), 0))
    now = time.time_ns()
    packet[4:12] = ns_to_ntp(now).to_bytes(8, "big")
    sock.send(packet)
    print(now)
"""


def bare_send(count: int, rate: int) -> JsonObject:
    """``t1_lead`` of a bare Python ``time_ns(); send()`` at ``rate`` (connected UDP socket)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink, capturing() as capture:
        sink.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, 16 << 20)
        sink.bind((HOST, 0))  # never read: it only keeps ICMP errors away
        port = str(sink.getsockname()[1])
        done = subprocess.run(
            [sys.executable, "-c", _BARE_SENDER, str(count), repr(1.0 / rate), port, HOST],
            capture_output=True,
            text=True,
            timeout=count / rate + 60,
            check=True,
        )
    stamps = [ntp_to_ns(ns_to_ntp(int(line))) for line in done.stdout.split()]
    wire = capture.match(False, stamps, "open", "bare sends")
    return {"t1_lead": _figure([when - stamp for when, stamp in zip(wire, stamps, strict=True)])}


def floor_figures(capture: Capture, t1: list[int], t2: list[int], t3: list[int]) -> JsonObject:
    """The C floor's ``t1_lead``, ``t2_lag``, ``t3_lead`` and ``processing`` (``bench.cfloor``)."""
    sent = capture.match(False, t1, "open", "C sender packets")
    back = capture.match(True, t3, "open", "C reflections")
    return {
        "packets": len(t1),
        "t1_lead": _figure([wire - stamp for wire, stamp in zip(sent, t1, strict=True)]),
        "t2_lag": _figure([got - wire for wire, got in zip(sent, t2, strict=True)]),
        "t3_lead": _figure([wire - stamp for wire, stamp in zip(back, t3, strict=True)]),
        "processing": _figure([t3_ns - t2_ns for t2_ns, t3_ns in zip(t2, t3, strict=True)]),
    }


def c_floor(count: int, rate: int) -> JsonObject:
    """The C floor at ``rate``: a minimal C sender and reflector under the same capture."""
    with compiled() as program:
        if program is None:
            return {"error": "no C compiler (cc): no floor measured"}
        with capturing() as capture:
            t1, t2, t3 = floor_session(program, HOST, count, rate)
    return floor_figures(capture, t1, t2, t3)


def _figure(values_ns: list[int]) -> JsonObject | None:
    summary = distribution_us(values_ns)
    if summary is None:
        return None
    return {key: summary[key] for key in ("count", "median_us", "p99_us", "max_us", "min_us")}


def twamp_fidelity(records: list[JsonObject], capture: Capture, mode: str) -> JsonObject:
    """The per-packet distances of one ``otwamp ping`` session from its capture."""
    if any(r["lost"] or r["duplicate"] for r in records):
        raise BenchError("a TWAMP packet was lost or duplicated on loopback")
    firsts = sorted(records, key=lambda r: r["seq"])
    in_packet = [r.get("t1_packet", r["t1"])["ns"] for r in firsts]
    sent = capture.match(False, in_packet, mode, "sender packets")
    by_reflector = sorted(firsts, key=lambda r: r["reflector_seq"])
    wire_back = capture.match(True, [r["t3"]["ns"] for r in by_reflector], mode, "reflections")
    reflected = {r["reflector_seq"]: when for r, when in zip(by_reflector, wire_back, strict=True)}
    t1_lead, record_lead, t2_lag, t3_lead, t4_lag, processing = [], [], [], [], [], []
    sources: dict[str, int] = {}
    for record, stamp, wire_out in zip(firsts, in_packet, sent, strict=True):
        wire_back = reflected[record["reflector_seq"]]
        t1 = record["t1"]
        source = t1.get("source", "user")
        sources[source] = sources.get(source, 0) + 1
        t1_lead.append(wire_out - stamp)
        record_lead.append(wire_out - t1["ns"])
        t2_lag.append(record["t2"]["ns"] - wire_out)
        t3_lead.append(wire_back - record["t3"]["ns"])
        t4_lag.append(record["t4"]["ns"] - wire_back)
        processing.append(record["t3"]["ns"] - record["t2"]["ns"])
    return {
        "packets": len(firsts),
        "t1_sources": sources,
        "t1_lead": _figure(t1_lead),
        "t1_record_lead": _figure(record_lead),
        "t2_lag": _figure(t2_lag),
        "t3_lead": _figure(t3_lead),
        "t4_lag": _figure(t4_lag),
        "processing": _figure(processing),
    }


def owamp_fidelity(
    records: list[JsonObject], capture: Capture, mode: str, direction: str
) -> JsonObject:
    """The per-packet distances of one ``otwamp owping`` direction from its capture."""
    # lost, skipped and discarded packets have no "sent" (``otwamp owping --raw --json``)
    arrived = [r for r in records if "sent" in r and not r["duplicate"]]
    stamps = [r["sent"]["ns"] for r in arrived]
    wire = capture.match(direction == "from", stamps, mode, f"OWAMP {direction} packets")
    send_lead = [when - r["sent"]["ns"] for when, r in zip(wire, arrived, strict=True)]
    receive_lag = [r["received"]["ns"] - when for when, r in zip(wire, arrived, strict=True)]
    return {
        "packets": len(arrived),
        "send_lead": _figure(send_lead),
        "receive_lag": _figure(receive_lag),
    }


def stamp_followup(records: list[JsonObject], capture: Capture) -> JsonObject:
    """Both T3s of one ``otwamp stamp --tlv follow-up`` session against its capture.

    A reply whose ``t3`` has ``"source": "follow-up"`` carried ``t3_packet``
    (``otwamp stamp --raw --json``); the last reply has no Follow-Up.
    """
    if any(r["lost"] or r["duplicate"] for r in records):
        raise BenchError("a STAMP packet was lost or duplicated on loopback")
    replies = sorted(records, key=lambda r: r["reflector_seq"])
    carried = [r.get("t3_packet", r["t3"])["ns"] for r in replies]
    wire = capture.match(True, carried, "open", "STAMP reflections")
    t3_lead = [when - t3 for when, t3 in zip(wire, carried, strict=True)]
    followup_t3_lead = [
        when - r["t3"]["ns"]
        for when, r in zip(wire, replies, strict=True)
        if r["t3"]["source"] == "follow-up"
    ]
    # the reflector reports the in-packet T3 when it had no kernel transmit time yet
    fallbacks = sum(r["t3"]["ns"] == r.get("t3_packet", {}).get("ns") for r in replies)
    return {
        "packets": len(replies),
        "follow_ups": len(followup_t3_lead),
        "follow_ups_without_kernel_time": fallbacks,
        "t3_lead": _figure(t3_lead),
        "followup_t3_lead": _figure(followup_t3_lead),
    }


def _nearer(session: JsonObject) -> JsonObject:
    """Whether the Follow-Up T3 is nearer the wire than the in-packet T3 (issue 13)."""
    packet, followup = session["t3_lead"], session["followup_t3_lead"]
    met = (
        packet is not None
        and followup is not None
        and abs(followup["median_us"]) < abs(packet["median_us"])
    )
    return {
        "target": "|follow-up T3 median lead| < |in-packet T3 median lead|",
        "t3_lead_median_us": None if packet is None else packet["median_us"],
        "followup_t3_lead_median_us": None if followup is None else followup["median_us"],
        "pass": bool(met),
    }


def _within(
    figure: JsonObject | None, median: float, p99: float | None, floor: JsonObject | None = None
) -> JsonObject:
    """The verdict on ``figure``; with the C floor's median of the same figure beside it."""
    measured = None if figure is None else figure["median_us"]
    worst = None if figure is None else figure["p99_us"]
    met = measured is not None and measured <= median and (p99 is None or worst <= p99)
    target = f"median <= {median:g}" + ("" if p99 is None else f", p99 <= {p99:g}")
    verdict = {"target": target, "median_us": measured, "p99_us": worst, "pass": bool(met)}
    if floor is not None:
        verdict["c_floor_median_us"] = floor["median_us"]
    return verdict


def _floor(results: JsonObject, rate: str, name: str) -> JsonObject | None:
    """The C floor's figure ``name`` at ``rate``, if it was measured."""
    figure: JsonObject | None = results.get("baseline_c", {}).get(rate, {}).get(name)
    return figure


def _targets(results: JsonObject) -> JsonObject:
    targets: JsonObject = {}
    for mode, rates in results.get("twamp", {}).items():
        for rate, session in rates.items():
            prefix = f"twamp_{mode}_{rate}pps"
            for name in ("t1_lead", "t2_lag", "t3_lead", "t4_lag"):
                floor = _floor(results, rate, name)
                targets[f"{prefix}_{name}"] = _within(
                    session[name], LEAD_MEDIAN_US, LEAD_P99_US, floor
                )
            targets[f"{prefix}_t1_record_lead"] = _within(
                session["t1_record_lead"], RECORD_T1_MEDIAN_US, None
            )
            if rate == f"{PROCESSING_RATE}":
                targets[f"{prefix}_processing"] = _within(
                    session["processing"],
                    PROCESSING_MEDIAN_US,
                    None,
                    _floor(results, rate, "processing"),
                )
    for mode, rates in results.get("owamp", {}).items():
        for rate, directions in rates.items():
            for direction, session in directions.items():
                for name, same in (("send_lead", "t1_lead"), ("receive_lag", "t2_lag")):
                    targets[f"owamp_{mode}_{rate}pps_{direction}_{name}"] = _within(
                        session[name], LEAD_MEDIAN_US, LEAD_P99_US, _floor(results, rate, same)
                    )
    for rate, session in results.get("stamp_followup", {}).items():
        targets[f"stamp_followup_{rate}pps"] = _nearer(session)
    return targets


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fidelity",
        description="Timestamp fidelity against a loopback capture; prints one JSON object.",
    )
    parser.add_argument("--quick", action="store_true", help="shorter sessions (1-2 s each)")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated subset")
    parser.add_argument("--rates", default=",".join(map(str, RATES)), help="pps, comma-separated")
    parser.add_argument(
        "--protocols",
        default="twamp,owamp,stamp",
        help="twamp, owamp, stamp (Follow-Up Telemetry), comma-separated",
    )
    return parser.parse_args(argv)


def _run(args: argparse.Namespace, result: JsonObject) -> None:
    modes = args.modes.split(",")
    rates = [int(rate) for rate in args.rates.split(",")]
    protocols = args.protocols.split(",")
    seconds = QUICK_SECONDS if args.quick else SECONDS
    baseline: JsonObject = result.setdefault("baseline_bare_send", {})
    floor: JsonObject = result.setdefault("baseline_c", {})
    for rate in rates:
        count = max(int(rate * seconds.get(rate, 2.0)), 10)
        log(f"fidelity: bare Python send {rate} pps x {count}")
        baseline[f"{rate}"] = bare_send(count, rate)
        log(f"fidelity: C floor {rate} pps x {count}")
        floor[f"{rate}"] = c_floor(count, rate)
    with ExitStack() as stack:
        secrets: Secrets = stack.enter_context(bench_secrets())
        if "twamp" in protocols:
            port = stack.enter_context(otwamp_server(secrets, host=HOST))
            twamp: JsonObject = result.setdefault("twamp", {})
            for mode in modes:
                for rate in rates:
                    count = max(int(rate * seconds.get(rate, 2.0)), 10)
                    log(f"fidelity: TWAMP {mode} {rate} pps x {count}")
                    with capturing() as capture:
                        records = _client("ping", port, count, rate, _security(mode, secrets))
                    twamp.setdefault(mode, {})[f"{rate}"] = twamp_fidelity(records, capture, mode)
        if "owamp" in protocols:
            modes_offered = ",".join(MODES)
            port = stack.enter_context(
                otwamp_server(secrets, protocol="OWAMP", host=HOST, modes=modes_offered)
            )
            owamp: JsonObject = result.setdefault("owamp", {})
            for mode in modes:
                for rate in rates:
                    count = max(int(rate * seconds.get(rate, 2.0)), 10)
                    for direction in ("to", "from"):
                        log(f"fidelity: OWAMP {direction} {mode} {rate} pps x {count}")
                        extra = [f"--{direction}", *_security(mode, secrets)]
                        with capturing() as capture:
                            records = _client("owping", port, count, rate, extra)
                        per_rate = owamp.setdefault(mode, {}).setdefault(f"{rate}", {})
                        per_rate[direction] = owamp_fidelity(records, capture, mode, direction)
        if "stamp" in protocols:
            port = stack.enter_context(stamp_reflector(HOST, "stateful"))  # §4.7 needs state
            followup: JsonObject = result.setdefault("stamp_followup", {})
            for rate in rates:
                count = max(int(rate * seconds.get(rate, 2.0)), 10)
                log(f"fidelity: STAMP Follow-Up Telemetry {rate} pps x {count}")
                with capturing() as capture:
                    records = _client("stamp", port, count, rate, ["--tlv", "follow-up"])
                followup[f"{rate}"] = stamp_followup(records, capture)
    result["targets"] = _targets(result)


def main(argv: list[str] | None = None) -> int:
    """Run the sessions and print the JSON object; return the exit status."""
    args = _arguments(argv)
    began = time.perf_counter()
    result: JsonObject = {
        "bench": "otwamp-fidelity",
        "run": "quick" if args.quick else "full",
        "started_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine_facts(),
        "reference": "AF_PACKET capture on lo, SO_TIMESTAMPNS",
        # open and authenticated packets on connected sockets: one native call (R25)
        "stamp_send": "native" if stampsend.native_built() else "python",
    }
    return finish_run(result, lambda: _run(args, result), began, BenchError)


if __name__ == "__main__":
    sys.exit(main())
