"""What the TWAMP and OWAMP server machines share: connection set-up, SERVWAIT, effects.

A server machine wraps the framing machine of its protocol and decides
every answer: the Modes offered, whether a Mode and a Token are acceptable,
the Accept values, SIDs, Stop-Sessions and Fetch-Session. Inputs are octets,
the time (``now``, Unix nanoseconds), random octets and the answers to its
own requests; outputs are ``Effect``s (docs/MACHINES.md).
"""

import enum
import logging
from collections.abc import Callable
from typing import ClassVar

from otwamp.control.effects import BindTestPort, Close, Effect, LookUpKey, Send
from otwamp.control.events import NEED_DATA, SetUpReceived
from otwamp.control.quota import SessionQuota
from otwamp.control.security import security_mode, server_setup
from otwamp.control.server_base import ServerConnectionBase, ServerState
from otwamp.control.server_policy import (
    NS,
    ServerPolicy,
    bind_refusal,
    fmt,
    key_id_text,
    spis_text,
)
from otwamp.errors import AuthenticationError, OtwampError
from otwamp.keys.source import Credentials
from otwamp.security.sessionkeys import SessionKeys
from otwamp.wire.registry import MODE_NAMES, Accept, OwampMode, TwampMode
from otwamp.wire.setup import ServerGreeting, ServerStart, SetUpResponse

log = logging.getLogger("otwamp.server")

MAX_UNREAD = 1 << 20  # octets a client may send ahead: far beyond any legitimate pipelining

Endpoint = tuple[str, int]
Random = Callable[[int], bytes]


class Awaiting(enum.Enum):
    """The answer a machine waits for before it reads further commands."""

    NOTHING = "nothing"
    KEY = "key"  # LookUpKey -> key_found
    PORT = "port"  # BindTestPort -> port_bound / port_failed
    SENDERS = "senders"  # StopSending -> senders_stopped (OWAMP)
    SCHEDULE = "schedule"  # ComputeSchedule -> schedule_ready (OWAMP)
    STREAM = "stream"  # SendStream -> stream_sent (OWAMP Fetch-Session)


class ServerMachine:
    """One control connection, server side: set-up and SERVWAIT, commands in subclasses."""

    NAME: ClassVar[str] = "OWAMP"
    SECURITY_BITS: ClassVar[int] = int(
        TwampMode.UNAUTHENTICATED | TwampMode.AUTHENTICATED | TwampMode.ENCRYPTED
    )
    IKEV2_BIT: ClassVar[int] = int(OwampMode.IKEV2_DERIVED)  # D3: OWAMP-Modes bit 4 (RFC 7718)

    def __init__(
        self,
        conn: ServerConnectionBase,
        policy: ServerPolicy,
        peer: Endpoint,
        local: Endpoint,
        now: int,
        random: Random,
        refuse: str | None = None,
        quota: SessionQuota | None = None,
    ) -> None:
        self.conn = conn
        self.quota = quota or SessionQuota(policy.max_sessions_per_connection)  # this one only
        self.policy = policy
        self.peer = peer
        self.local = local
        self.mode = 0
        self.keys: SessionKeys | None = None
        self.identity: bytes | None = None  # the KeyID authenticated, None in open mode
        self.closed = False
        self._random = random
        self._effects: list[Effect] = []
        self._awaiting = Awaiting.NOTHING
        self._setup: tuple[SetUpResponse, TwampMode] | None = None  # awaiting its key
        self._greeting = ServerGreeting(0, bytes(16), bytes(16), policy.count)  # set by _greet
        self._last_activity = now
        self._message_since: int | None = now  # Set-Up-Response is awaited (S4)
        self._ever_started = False
        self._greet(refuse)

    @property
    def offered(self) -> int:
        """The Modes word of the Server-Greeting (RFC 4656 §3.1, D3)."""
        return self.policy.offered(self.SECURITY_BITS, self.IKEV2_BIT)

    @property
    def where(self) -> str:
        """The connection, for log lines."""
        return f"{self.NAME}-Control connection from {fmt(*self.peer)}"

    # Inputs

    def receive_data(self, data: bytes, now: int) -> None:
        """Octets from the client."""
        if self.closed:
            return
        self._last_activity = now
        self.conn.receive_data(data)
        self._advance(now)
        if self.conn.pending() > MAX_UNREAD:
            self._close(f"more than {MAX_UNREAD} octets sent ahead of their answers", now)

    def key_found(self, credentials: Credentials | None, problem: str | None, now: int) -> None:
        """The answer to ``LookUpKey``: the credentials, or None and why not."""
        self._resume(Awaiting.KEY)
        setup, self._setup = self._setup, None
        if setup is None or self.closed:
            return
        self._authenticate(*setup, credentials, problem)
        self._advance(now)

    def port_bound(self, port: int, now: int) -> None:
        """The answer to ``BindTestPort``: the port bound."""
        self._resume(Awaiting.PORT)
        if not self.closed:
            self._bound(port, now)
            self._advance(now)

    def port_failed(self, code: int, reason: str, now: int) -> None:
        """The answer to ``BindTestPort``: no socket (``code`` is the errno)."""
        self._resume(Awaiting.PORT)
        if not self.closed:
            self._refuse_request(bind_refusal(code), f"cannot bind a test port: {reason}")
            self._advance(now)

    def connection_lost(self, now: int, reason: str | None = "closed by the peer") -> None:
        """The control connection ended (EOF, reset, shutdown)."""
        self._close(reason, now, logging.INFO)

    def shutdown(self, now: int) -> None:
        """The server stops: end this connection the way the protocol allows."""
        self._close("the server is shutting down", now, logging.INFO)

    def get_timer(self) -> int | None:
        """When ``handle_timer`` must next be called (Unix ns), or None."""
        if self.closed:
            return None
        servwait = self._last_activity + self.policy.servwait_ns
        if self._message_since is None:
            return servwait
        return min(servwait, self._message_since + self.policy.message_timeout_ns)

    def handle_timer(self, now: int) -> None:
        """A message begun too long ago (S4); SERVWAIT (RFC 5357 §3.1), test traffic counting."""
        if self.closed:
            return
        since = self._message_since
        if since is not None and now >= since + self.policy.message_timeout_ns:
            self._close(f"a message begun {(now - since) / NS:.0f} s ago is still incomplete", now)
            return
        if now < self._last_activity + self.policy.servwait_ns:
            return
        if self.testing(now):
            self._last_activity = now
            return
        idle = (now - self._last_activity) / NS
        self._close(f"idle for {idle:.0f} s (SERVWAIT)", now)

    def effects(self) -> list[Effect]:
        """The effects produced so far, in order; the driver carries them out."""
        effects, self._effects = self._effects, []
        return effects

    # For subclasses

    def testing(self, now: int) -> bool:
        """Whether test sessions are still active, which keeps the connection alive."""
        return False

    @property
    def started(self) -> bool:
        """Whether a Start-Sessions was accepted on this connection."""
        return self._ever_started

    def evict(self, now: int) -> None:
        """The server is full and this connection never started a test: make room (S4)."""
        self._close("dropped to make room: the server is full and it started no test", now)

    def release_all(self, now: int) -> None:
        """Free the test sessions of a connection that ends."""

    def _on_command(self, event: object, now: int) -> None:
        raise NotImplementedError

    def _bound(self, port: int, now: int) -> None:
        raise NotImplementedError

    def _refuse_request(self, accept: Accept, reason: str) -> None:
        raise NotImplementedError

    def _watch_message(self, now: int) -> None:
        """Start or stop the whole-message deadline: the client's octets, not ours, count."""
        if self._awaiting is not Awaiting.NOTHING or not self.conn.mid_message():
            self._message_since = None
        elif self._message_since is None:
            self._message_since = now

    def _quota_refusal(self, sessions: int, packets: int = 0) -> tuple[Accept, str] | None:
        """Accept 4 beyond the connection's own limits, 5 beyond the server's (S2, S3)."""
        limit = self.policy.max_sessions_per_connection
        if sessions >= limit:
            return Accept.PERMANENT_RESOURCE_LIMITATION, f"{limit} sessions on this connection"
        shared = self.quota.refusal(self.peer[0], packets)
        return None if shared is None else (Accept.TEMPORARY_RESOURCE_LIMITATION, shared)

    def _emit(self, effect: Effect) -> None:
        self._effects.append(effect)

    def _send(self, data: bytes) -> None:
        self._effects.append(Send(data))

    def _wait_for(self, what: Awaiting, effect: Effect) -> None:
        self._awaiting = what
        self._emit(effect)

    def _bind(self, host: str, port: int, dscp: int) -> None:
        self._wait_for(Awaiting.PORT, BindTestPort(host, port, dscp))

    def refused(self, accept: Accept, reason: str) -> Accept:
        """Log why a request is refused and return its Accept value (RFC 4656 §3.3)."""
        log.warning(
            "%s session request from %s refused (Accept %d): %s",
            self.NAME,
            fmt(*self.peer),
            accept,
            reason,
        )
        return accept

    def _close(self, reason: str | None, now: int, level: int = logging.WARNING) -> None:
        if self.closed:
            return
        self.release_all(now)
        self.closed = True
        self.conn.close()
        self._emit(Close(reason, level))

    # The loop

    def _resume(self, what: Awaiting) -> None:
        if self._awaiting is not what:
            raise RuntimeError(f"no {what.value} was asked for")
        self._awaiting = Awaiting.NOTHING

    def _advance(self, now: int) -> None:
        """Read and answer commands until more octets or an answer are needed."""
        self._read_commands(now)
        self._watch_message(now)

    def _read_commands(self, now: int) -> None:
        while not self.closed and self._awaiting is Awaiting.NOTHING:
            if self.conn.state is ServerState.CLOSED:  # after a refusal that ends it
                self._close(None, now)
                return
            try:
                event = self.conn.next_event()
                if event is NEED_DATA:
                    return
                if isinstance(event, SetUpReceived):
                    self._set_up(event.response)
                else:
                    self._on_command(event, now)
            except OtwampError as exc:  # ProtocolError, AuthenticationError: this peer only
                self._close(str(exc), now)

    def _greet(self, refuse: str | None) -> None:
        """Server-Greeting; Modes 0 when the server is full (RFC 4656 §3.1)."""
        modes = 0 if refuse else self.offered
        challenge, salt = self._random(16), self._random(16)
        self._greeting = ServerGreeting(modes, challenge, salt, self.policy.count)
        self._send(self.conn.greet(self._greeting))
        if refuse:
            log.warning("refused %s: %s", fmt(*self.peer), refuse)
            self.closed = True
            self._emit(Close(None))

    def _set_up(self, response: SetUpResponse) -> None:
        """Check the Mode (RFC 4656 §3.1); ask for the key when it is secured."""
        security = security_mode(response.mode)
        if security is None or response.mode & ~self.offered:
            log.warning(
                "%s: Mode %#x was not offered (offered %#x)",
                fmt(*self.peer),
                response.mode,
                self.offered,
            )
            self._send(self.conn.start(ServerStart(Accept.NOT_SUPPORTED)))
        elif security is TwampMode.UNAUTHENTICATED:
            self.mode = response.mode
            self._send(self.conn.start(ServerStart(Accept.OK, bytes(16), self.policy.start_time)))
        else:
            self._setup = response, security
            derived = bool(response.mode & self.IKEV2_BIT)
            self._wait_for(Awaiting.KEY, LookUpKey(response.key_id, derived))

    def _authenticate(
        self,
        response: SetUpResponse,
        security: TwampMode,
        credentials: Credentials | None,
        problem: str | None,
    ) -> None:
        """Open the Token with the key found and answer with Server-Start (RFC 4656 §3.1)."""
        peer = fmt(*self.peer)
        derived = bool(response.mode & self.IKEV2_BIT)
        if credentials is None:
            # RFC 7717 §5.2: no IKEv2 SA for the KeyID's SPIs is Accept 6; RFC 4656 §3.3: else 1.
            refusal = Accept.NO_IKEV2_SA if derived else Accept.FAILURE
            if problem is None:
                kind = f"no IKEv2 SA with {spis_text(response.key_id)}" if derived else None
                problem = kind or f"unknown KeyID {key_id_text(response.key_id)}"
            log.warning("authentication failed from %s: %s", peer, problem)
            self._send(self.conn.start(ServerStart(refusal)))
            return
        server_iv = self._random(16)
        try:
            channels, rx = server_setup(self._greeting, response, credentials, server_iv)
        except AuthenticationError:
            log.warning(
                "authentication failed from %s: KeyID %r, wrong shared secret "
                "(Token Challenge mismatch)",
                peer,
                credentials.label,
            )
            self._send(self.conn.start(ServerStart(Accept.FAILURE)))
            return
        log.info(
            "authenticated KeyID %r (%s) from %s, %s mode %s",
            credentials.label,
            credentials.source,
            peer,
            self.NAME,
            MODE_NAMES[security],
        )
        self.mode, self.keys, self.identity = response.mode, channels.keys, response.key_id
        start = ServerStart(Accept.OK, server_iv, self.policy.start_time)
        self._send(self.conn.start(start, channels.tx, rx))
