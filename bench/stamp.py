"""``python -m bench.stamp [--quick]``: the STAMP reflector's zero-loss rate, as one JSON object.

An ``otwamp server`` reflects STAMP only (``--stamp-listen 127.0.0.1:PORT
--stamp-mode stateless``, unauthenticated, no TLVs) and the target is
40,000 pps without loss (issue 13). One ``otwamp stamp`` process cannot
send that fast (it stamps, records and reads every packet in one Python
thread), so the load comes from a generator of this bench that does no
more than a sender must:

- every packet is built before the session with ``StampSender`` (RFC 8762
  §4.2.1 base packets, sequence numbers 0..N-1, one SSID), so sending is a
  ``send`` call per packet, paced on ``perf_counter_ns`` (packets due since
  the last wake-up go out together; the process sleeps in between);
- a forked process reads the replies from the same connected socket while
  the parent sends, then decodes them (``ReflectorPacket``) and counts each
  Session-Sender Sequence Number: lost = sent - distinct, duplicates the
  rest; replies of another SSID or beyond N are ``foreign``;
- the send time of each packet is recorded, so the rate is the one really
  kept ((N - 1) / span), and the search (``bench.twamp.zero_loss_search``)
  rejects a session whose sender fell behind, exactly as for TWAMP;
- drops in our own receive socket (SO_MEMINFO) fail the session as our
  fault, named so, never counted against the reflector;
- the reflector must keep up, not only lose nothing: its socket buffer
  holds thousands of packets, so a short session at a rate it cannot
  sustain still arrives whole. A session whose replies left the reflector
  (their T3 span) at under 95 % of the rate sent fails as "the reflector
  fell behind", and each probe lasts seconds (200,000 packets).

The JSON also has one ``otwamp stamp`` session (``cli_check``: the
operator's sender at 20,000 pps), cheap and indicative only. Exit status 0
when the target is met, 1 when missed, 2 when the reflector could not run.
"""

import argparse
import contextlib
import json
import multiprocessing
import secrets
import select
import socket
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event

from bench.machine import load_average, machine_facts
from bench.procs import BenchError, otwamp_command
from bench.stats import JsonObject
from bench.twamp import (
    REPLY_WAIT,
    SENDER_LIMITED,
    PingRun,
    SenderRun,
    Session,
    _add_record,
    _probe_json,
    run_client,
    zero_loss_search,
)
from otwamp.drivers.clock import clock_state
from otwamp.drivers.udp import SocketCounts, open_test_socket
from otwamp.errors import ProtocolError
from otwamp.results.records import TwampSessionRecord
from otwamp.stamp.packets import ReflectorPacket
from otwamp.stamp.sender import StampSender
from otwamp.wire.timestamp import ns_to_ntp

TARGET_PPS = 40_000
READY = b"STAMP reflector ("
START_TIMEOUT = 10.0
HOST = "127.0.0.1"
CLI_CHECK_PPS = 20_000
LOAD_WAIT = 1.0  # seconds for the last replies after the last send
_RECEIVE_BUFFER = 256 << 20  # our receive socket holds a whole session's replies
_SLEEP_AHEAD_NS = 200_000  # sleep when the next packet is due later than this


@contextlib.contextmanager
def stamp_reflector(host: str = HOST, mode: str = "stateless") -> Iterator[int]:
    """``otwamp server`` reflecting STAMP only on ``host`` and a free UDP port; yields the port."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((host, 0))
        port = int(probe.getsockname()[1])
    command = [*otwamp_command(), "server", "--listen", "off", "--owamp-listen", "off"]
    command += ["--stamp-listen", f"{host}:{port}", "--stamp-mode", mode]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while True:
                log.seek(0)
                if READY in log.read():
                    break
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise BenchError(f"the STAMP reflector did not start: {log.read()!r}")
                time.sleep(0.05)
            yield port
        finally:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


@dataclass(slots=True)
class LoadRun(SenderRun):
    """One session of the load generator; ``t1_ns`` are its send times (perf_counter_ns)."""

    foreign: int = 0  # replies that were not ours: undecodable, another SSID, seq past N
    receiver_drops: int = 0  # our receive socket's kernel drops: the generator's fault
    reflected_pps: float | None = None  # from the replies' T3 (the reflector's send times)

    def figures(self) -> JsonObject:
        """How the load was made, and what else the replies said."""
        return {
            "generator": "prebuilt packets, 1 paced sender process + 1 receiver process",
            "reflected_pps": None if self.reflected_pps is None else round(self.reflected_pps),
            "foreign": self.foreign,
            "receiver_drops": self.receiver_drops,
        }


def _receive(sock: socket.socket, count: int, ssid: int, stop: Event, out: Connection) -> None:
    """The receiver process: read replies until ``count`` came or ``stop``; send the tally."""
    replies: list[bytes] = []
    while len(replies) < count and not stop.is_set():
        try:
            replies.append(sock.recv(2048, socket.MSG_DONTWAIT))
        except BlockingIOError:
            select.select([sock], [], [], 0.05)  # nothing queued: wait for more, or for stop
    time.sleep(0.05)  # late duplicates
    while True:
        try:
            replies.append(sock.recv(2048, socket.MSG_DONTWAIT))
        except BlockingIOError:
            break
    out.send(_tally(replies, count, ssid))


def _tally(replies: list[bytes], count: int, ssid: int) -> tuple[int, int, int, float]:
    """(distinct replies, duplicates, foreign, reflected pps) of one session's replies."""
    seen = bytearray(count)
    duplicates = foreign = 0
    t3: list[int] = []
    for data in replies:
        try:
            packet = ReflectorPacket.decode(data, None)
        except ProtocolError:
            foreign += 1
            continue
        seq = packet.sender_seq
        if packet.ssid != ssid or seq >= count:
            foreign += 1
        elif seen[seq]:
            duplicates += 1
        else:
            seen[seq] = 1
            t3.append(packet.timestamp)
    span = (max(t3) - min(t3)) / 2**32 if len(t3) > 1 else 0.0
    return sum(seen), duplicates, foreign, (len(t3) - 1) / span if span > 0 else 0.0


def prebuilt(count: int, ssid: int) -> list[bytes]:
    """Packets 0..count-1 of unauthenticated session ``ssid`` (RFC 8762 §4.2.1), stamped now."""
    record = TwampSessionRecord(sid=ssid.to_bytes(2, "big"), mode="open", key_source="none")
    sender = StampSender(record, ssid)
    error, ntp = clock_state().estimate.to_int(), ns_to_ntp(time.time_ns())
    return [bytes(sender.stamp(sender.prepare(seq), ntp, error)) for seq in range(count)]


def generate(port: int, count: int, rate: int, wait: float = LOAD_WAIT) -> LoadRun:
    """Send ``count`` prebuilt packets at ``rate`` pps to the reflector; count the replies."""
    run = LoadRun(count, 1.0 / rate)
    ssid = 1 + secrets.randbelow(0xFFFF)  # a session of its own (RFC 8972 §3)
    packets = prebuilt(count, ssid)
    context = multiprocessing.get_context("fork")
    sock = open_test_socket(HOST, 0, socket.AF_INET, 0, _RECEIVE_BUFFER)
    with sock:
        sock.connect((HOST, port))
        sock.setblocking(True)  # sends wait for buffer space; the receiver never blocks
        stop = context.Event()
        results, out = context.Pipe(duplex=False)
        receiver = context.Process(
            target=_receive, args=(sock, count, ssid, stop, out), daemon=True
        )
        receiver.start()
        try:
            run.t1_ns = _paced(sock, packets, rate)
            run.sent = count
            if not results.poll(wait):  # then the receiver stops, decodes and answers
                stop.set()
            distinct, run.duplicates, run.foreign, reflected = results.recv()
        finally:
            stop.set()
            receiver.join(10)
            if receiver.is_alive():
                receiver.kill()
                receiver.join()
        counts = SocketCounts()
        counts.settle(sock)
    run.received, run.lost = distinct, count - distinct
    run.reflected_pps = reflected or None
    run.receiver_drops = counts.kernel_drops
    achieved = run.achieved_pps or 0.0
    if counts.kernel_drops:
        run.error = f"the generator's receive socket dropped {counts.kernel_drops} replies"
    elif run.lost == 0 and reflected < SENDER_LIMITED * achieved:
        run.error = f"the reflector fell behind: reflected {reflected:.0f} pps"
    return run


def _paced(sock: socket.socket, packets: list[bytes], rate: int) -> list[int]:
    """Send ``packets`` at ``rate`` pps; each one's send time (ns, perf_counter)."""
    send, clock, sleep = sock.send, time.perf_counter_ns, time.sleep
    count = len(packets)
    sent = array("q", bytes(8 * count))
    start = clock()
    seq = 0
    while seq < count:
        now = clock()
        due = min((now - start) * rate // 1_000_000_000 + 1, count)  # packets due by now
        if due <= seq:
            ahead = start + seq * 1_000_000_000 // rate - now
            if ahead > _SLEEP_AHEAD_NS:
                sleep((ahead - _SLEEP_AHEAD_NS // 2) / 1e9)
            else:
                sleep(0)
            continue
        while seq < due:
            send(packets[seq])
            sent[seq] = clock()
            seq += 1
    return sent.tolist()


def load_sessions(port: int, count: int) -> Session:
    """``count``-packet generator sessions, for ``zero_loss_search``."""
    return lambda rate: generate(port, count, rate)


def stamp_sessions(port: int, count: int) -> Session:
    """``count``-packet ``otwamp stamp`` sessions, for ``zero_loss_search``."""
    return lambda rate: run_client(
        PingRun(count, 1.0 / rate), "stamp", port, (), REPLY_WAIT, _add_record
    )


def main(argv: list[str] | None = None) -> int:
    """Run the search and print the JSON object."""
    parser = argparse.ArgumentParser(prog="python -m bench.stamp")
    parser.add_argument("--quick", action="store_true", help="40,000-packet probes, not 200,000")
    args = parser.parse_args(argv)
    count, start = (40_000, 10_000) if args.quick else (200_000, 20_000)
    result: JsonObject = {"machine": machine_facts(), "load_before": load_average()}
    try:
        with stamp_reflector() as port:
            search = zero_loss_search(
                load_sessions(port, count), count, start, 320_000, label=" (STAMP stateless)"
            )
            cli = stamp_sessions(port, 10_000)(CLI_CHECK_PPS)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    result["stamp_stateless_open"] = {
        "reflector": "otwamp server --stamp-listen 127.0.0.1:PORT --stamp-mode stateless",
        "load": (
            "bench.stamp.generate: prebuilt RFC 8762 §4.2.1 packets sent by one paced process, "
            "replies counted by Session-Sender Sequence Number in another"
        ),
        "zero_loss_pps": search["zero_loss_pps"],
        "zero_loss_achieved_pps": search["zero_loss_achieved_pps"],
        "zero_loss_confirmed": search["confirmed"],
        "zero_loss_limited_by": search["limited_by"],
        "zero_loss_search": search,
        "cli_check": _probe_json(CLI_CHECK_PPS, cli) | {"sender": "otwamp stamp --raw --json"},
    }
    met = (search["zero_loss_pps"] or 0) >= TARGET_PPS
    result["targets"] = {
        "stamp_zero_loss_pps": {
            "target": f">= {TARGET_PPS} (load generator)",
            "measured": search["zero_loss_pps"],
            "met": met,
        }
    }
    result["load_after"] = load_average()
    print(json.dumps(result, indent=2))
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
