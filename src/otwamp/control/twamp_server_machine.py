"""The TWAMP server machine: which sessions to accept, start and stop (RFC 5357 §3-4).

Each accepted Request-TW-Session becomes a Session-Reflector the driver
opens on the port it bound (``OpenReflector``); Start-Sessions starts them,
Stop-Sessions lets each reflect for its Timeout more (RFC 5357 §3.8). With
Individual Session Control (RFC 5938) Start-N-Sessions and Stop-N-Sessions
do the same for the sessions they name; the RFC 6038 and RFC 7750 modes
change the test-packet formats each reflector uses (``PacketFormat``).
"""

import logging
from dataclasses import dataclass
from typing import TypeVar

from otwamp.control.effects import OpenReflector, Release, StartTest, StopReflectors
from otwamp.control.events import (
    SessionRequested,
    StartNRequested,
    StartRequested,
    StopNRequested,
    StopRequested,
    UnsupportedCommand,
)
from otwamp.control.quota import SessionQuota
from otwamp.control.server_machine import Endpoint, Random, ServerMachine
from otwamp.control.server_policy import NS, ServerPolicy, fmt, ip_version
from otwamp.control.sid import new_sid
from otwamp.control.twamp_server import TwampServerConnection
from otwamp.session.protection import protects, session_protection
from otwamp.wire.registry import Accept, TwampMode
from otwamp.wire.timestamp import ns_to_ntp, ntp_to_duration
from otwamp.wire.twamp_control import AcceptSession, RequestTwSession, type_p_dscp
from otwamp.wire.twamp_features import EXTENSION_BITS, PacketFormat
from otwamp.wire.twamp_individual import StartNAck, StopNAck
from otwamp.wire.twamp_test import MAX_UDP_PAYLOAD, sender_size

log = logging.getLogger("otwamp.server")

Ack = TypeVar("Ack", StartNAck, StopNAck)
MAX_STOP_TIMEOUT = 60.0  # cap on how long a stopped session keeps reflecting, seconds


@dataclass(slots=True)
class _Reflector:
    """One accepted session of the connection."""

    timeout_ns: int  # reflect this long after Stop-Sessions (RFC 5357 §3.8)
    started: bool = False
    open: bool = True
    stopped: bool = False  # Stop-Sessions or Stop-N-Sessions: it ends after its Timeout


class TwampServerMachine(ServerMachine):
    """One TWAMP-Control connection, server side, with every decision."""

    NAME = "TWAMP"
    SECURITY_BITS = int(
        TwampMode.UNAUTHENTICATED | TwampMode.AUTHENTICATED | TwampMode.ENCRYPTED | TwampMode.MIXED
    )
    IKEV2_BIT = int(TwampMode.IKEV2_DERIVED)  # D3: TWAMP-Modes bit 7 (RFC 7717 §7)

    def __init__(
        self,
        policy: ServerPolicy,
        peer: Endpoint,
        local: Endpoint,
        now: int,
        random: Random,
        refuse: str | None = None,
        quota: SessionQuota | None = None,
    ) -> None:
        self.twamp = TwampServerConnection()
        self.reflectors: dict[bytes, _Reflector] = {}
        self._request: RequestTwSession | None = None  # awaiting its port
        super().__init__(self.twamp, policy, peer, local, now, random, refuse, quota)

    @property
    def offered(self) -> int:
        """The Modes word: the security modes, then the RFC 5938/6038/7750 bits enabled."""
        modes = super().offered
        return modes | (self.policy.twamp_extensions & EXTENSION_BITS) if modes else 0

    def reflector_closed(self, sid: bytes) -> None:
        """A Session-Reflector ended (REFWAIT or its stop Timeout, RFC 5357 §4.2)."""
        reflector = self.reflectors.get(sid)
        if reflector is not None and reflector.open:
            reflector.open = False
            self.quota.give(self.peer[0])

    def testing(self, now: int) -> bool:
        """Whether a started reflector is still open (REFWAIT closes idle ones, R9)."""
        return any(r.started and r.open for r in self.reflectors.values())

    def release_all(self, now: int) -> None:
        """A closed connection ends its sessions; stopped ones finish their Timeout (§3.8)."""
        sids = tuple(sid for sid, r in self.reflectors.items() if r.open and not r.stopped)
        if sids:
            self._emit(Release(sids))

    def _on_command(self, event: object, now: int) -> None:
        match event:
            case SessionRequested(request=request):
                self._request_session(request)
            case StartRequested():
                fresh = tuple(sid for sid, r in self.reflectors.items() if not r.started)
                for sid in fresh:
                    self.reflectors[sid].started = True
                self._ever_started = True
                self._emit(StartTest(fresh))
                self._send(self.twamp.start_ack(Accept.OK))
            case StopRequested():
                self._stop(tuple(self.reflectors))
            case StartNRequested(sids=sids):
                self._send(self.twamp.start_n_acks(self._start_n(sids)))
            case StopNRequested(sids=sids):
                known = tuple(sid for sid in dict.fromkeys(sids) if sid in self.reflectors)
                self._stop(known)
                self._send(self.twamp.stop_n_acks(self._acks(StopNAck, sids, set(known))))
            case UnsupportedCommand(command=number):
                log.warning("%s: unknown Command Number %d, sent Accept 3", self.where, number)
                self._send(self.twamp.refusal_for_unsupported())
            case _:
                raise TypeError(f"unexpected event {event!r}")

    def _start_n(self, sids: tuple[bytes, ...]) -> list[StartNAck]:
        """Start the sessions named that can start; one Start-N-Ack per Accept (RFC 5938 §3.3).

        A session already started answers 0; one unknown, ended or stopped, 1.
        """
        fresh, startable = [], set()
        for sid in dict.fromkeys(sids):
            reflector = self.reflectors.get(sid)
            if reflector is None or not reflector.open or reflector.stopped:
                continue
            startable.add(sid)
            if not reflector.started:
                reflector.started = True
                fresh.append(sid)
        if fresh:
            self._ever_started = True
            self._emit(StartTest(tuple(fresh)))
        return self._acks(StartNAck, sids, startable)

    def _acks(self, kind: type[Ack], sids: tuple[bytes, ...], accepted: set[bytes]) -> list[Ack]:
        """Accept 0 for the SIDs in ``accepted``, 1 for the others, each group one message."""
        named = tuple(dict.fromkeys(sids))
        ok = tuple(sid for sid in named if sid in accepted)
        failed = tuple(sid for sid in named if sid not in accepted)
        if failed:
            log.warning(
                "%s: %s for %d unknown, ended or stopped sessions, sent Accept 1",
                self.where,
                kind.NAME,
                len(failed),
            )
        groups = ((Accept.OK, ok), (Accept.FAILURE, failed))
        return [kind(group, accept) for accept, group in groups if group]

    def _stop(self, sids: tuple[bytes, ...]) -> None:
        """Let the sessions named reflect for their Timeout more (RFC 5357 §3.8, RFC 5938 §4.2)."""
        timeouts = []
        for sid in sids:
            reflector = self.reflectors[sid]
            if reflector.open and not reflector.stopped:
                reflector.stopped = True
                timeouts.append((sid, reflector.timeout_ns))
        if timeouts:
            self._emit(StopReflectors(tuple(timeouts)))

    def _request_session(self, request: RequestTwSession) -> None:
        live = sum(r.open for r in self.reflectors.values())
        refusal = self._refusal(request) or self._quota_refusal(live)
        if refusal is not None:
            self._refuse_request(*refusal)
            return
        self._request = request
        local = str(request.receiver_address)
        if request.receiver_address.is_unspecified:
            local = self.local[0]
        self._bind(local, request.receiver_port, type_p_dscp(request.type_p) or 0)

    def _bound(self, port: int, now: int) -> None:
        request, self._request = self._request, None
        if request is None:
            raise RuntimeError("a port bound for no request")
        sender = str(request.sender_address)
        if request.sender_address.is_unspecified:
            sender = self.peer[0]
        sid = new_sid(self.local[0], ns_to_ntp(now), self._random)
        protection = session_protection(self.mode, sid, self.keys)
        timeout = min(ntp_to_duration(request.timeout), MAX_STOP_TIMEOUT)
        self.reflectors[sid] = _Reflector(round(timeout * NS))
        self.quota.take(self.peer[0])
        endpoint = (sender, request.sender_port)
        form = self._test_format(request)
        refwait = self.policy.refwait_ns
        self._emit(OpenReflector(sid, port, endpoint, protection, refwait, form))
        log.info("session %s: reflecting for %s on port %d", sid.hex(), fmt(*endpoint), port)
        # RFC 6038 §4.3: Reflected octets echo the request's; we need no Server octets (0).
        accept = AcceptSession(Accept.OK, port, sid, request.reflect_octets)
        self._send(self.twamp.accept_session(accept))

    def _test_format(self, request: RequestTwSession) -> PacketFormat:
        """The test-packet formats the Mode and the request select (RFC 6038, RFC 7750)."""
        return PacketFormat.of(self.mode, protects(self.mode, self.keys), request.reflect_length)

    def _refuse_request(self, accept: Accept, reason: str) -> None:
        self._request = None
        self._send(self.twamp.accept_session(AcceptSession(self.refused(accept, reason))))

    def _refusal(self, request: RequestTwSession) -> tuple[Accept, str] | None:
        """Why a request cannot be honoured, with its Accept value (RFC 4656 §3.3, R5)."""
        if request.conf_sender or request.conf_receiver:
            return Accept.NOT_SUPPORTED, "Conf-Sender/Conf-Receiver must be 0 (RFC 5357 §3.5)"
        if request.num_slots or request.num_packets:
            return (
                Accept.NOT_SUPPORTED,
                "Number of Schedule Slots/Packets must be 0 (RFC 5357 §3.5)",
            )
        if request.ipvn != ip_version(self.local[0]):
            return (
                Accept.NOT_SUPPORTED,
                f"IPv{request.ipvn} session on an IPv{ip_version(self.local[0])} connection",
            )
        if (
            not request.sender_address.is_unspecified
            and str(request.sender_address) != self.peer[0]
        ):
            return (
                Accept.NOT_SUPPORTED,
                "Sender Address is not the control client's (no third-party reflection)",
            )
        if sender_size(protects(self.mode, self.keys), request.padding_length) > MAX_UDP_PAYLOAD:
            return (
                Accept.NOT_SUPPORTED,
                f"Padding Length {request.padding_length} exceeds a UDP datagram",
            )
        if type_p_dscp(request.type_p) is None:
            return Accept.NOT_SUPPORTED, f"Type-P Descriptor {request.type_p:#010x} is not a DSCP"
        problem = self._test_format(request).padding_problem(request.padding_length)
        return None if problem is None else (Accept.NOT_SUPPORTED, problem)
