"""The RFC 7717 key source with fake SA lookups (decisions D2, D4, D6, D7).

Server side: KeyID octets 0-15 name the SA (SPIi | SPIr), octets 16-79 are ignored, the SA's
peer must be the control connection's source unless the check is off. Client side: each policy
of D6. Nowhere does key material appear in a repr, a log line or an exception.
"""

import asyncio
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import pytest

from otwamp.control.security import client_setup, server_setup
from otwamp.control.server_policy import fmt
from otwamp.drivers.ike_lookup import BrokerLookup
from otwamp.errors import KeySourceError
from otwamp.keys.ikev2 import IkeClientKeys, IkeServerKeys, PeerSa, Policy, SaKey
from otwamp.keys.source import Credentials, KeySourceKind
from otwamp.wire.registry import TwampMode
from otwamp.wire.setup import ServerGreeting

SPI_I, SPI_R = bytes.fromhex("0123456789abcdef"), bytes.fromhex("fedcba9876543210")
KEY = bytes.fromhex("5e" * 32)  # a throwaway prf(SK_d, "IPPM")
SA = SaKey(SPI_I, SPI_R, "192.0.2.1", KEY)
KEY_TEXTS = (KEY.hex(), KEY.hex().upper(), repr(KEY), str(KEY))


def no_key_in(text: str) -> None:
    for form in KEY_TEXTS:
        assert form not in text, "key material leaked"


@dataclass
class FakeLookup:
    """SAs by SPIs and by peer; records every question."""

    sas: list[SaKey] = field(default_factory=list)
    can_initiate: SaKey | None = None
    failure: Exception | None = None
    asked: list[tuple[object, ...]] = field(default_factory=list)

    async def by_spis(self, spi_i: bytes, spi_r: bytes) -> SaKey | None:
        self.asked.append(("by_spis", spi_i, spi_r))
        return next((sa for sa in self.sas if (sa.spi_i, sa.spi_r) == (spi_i, spi_r)), None)

    async def for_peer(self, host: str, initiate: bool) -> PeerSa | None:
        self.asked.append(("for_peer", host, initiate))
        if self.failure is not None:
            raise self.failure
        found = next((sa for sa in self.sas if sa.peer == host), None)
        if found is None and initiate and self.can_initiate is not None:
            self.sas.append(self.can_initiate)
            return PeerSa(self.can_initiate, initiated=True)
        return None if found is None else PeerSa(found)


def server_secret(keys: IkeServerKeys, key_id: bytes, peer: str) -> Credentials | None:
    """The server's lookup, run to completion."""
    return asyncio.run(keys.server_secret(key_id, peer))


@dataclass
class FakeFallback:
    """A pass-phrase client key source."""

    calls: list[str] = field(default_factory=list)
    name: KeySourceKind = KeySourceKind.PASSPHRASE
    ikev2_derived: bool = False

    async def credentials_for(self, server: str) -> Credentials:
        self.calls.append(server)
        return Credentials(
            b"alice".ljust(80, b"\0"), b"pass phrase", KeySourceKind.PASSPHRASE, "alice"
        )


# --- SaKey and the KeyID of D4 --------------------------------------------------------------


def test_credentials_key_id_is_spis_then_64_zeros():
    credentials = SA.credentials()
    assert len(credentials.key_id) == 80
    assert credentials.key_id[:8] == SPI_I and credentials.key_id[8:16] == SPI_R
    assert credentials.key_id[16:] == bytes(64)
    assert credentials.secret == KEY
    assert credentials.source is KeySourceKind.IKEV2 and credentials.source == "ikev2"
    assert credentials.label == "SPIi=0123456789abcdef SPIr=fedcba9876543210"
    assert SA.label == credentials.label


def test_no_key_in_reprs():
    for text in (repr(SA), str(SA), repr(SA.credentials()), SA.label):
        no_key_in(text)
    assert repr(SPI_I) in repr(SA) and "192.0.2.1" in repr(SA)


# --- server: IkeServerKeys ------------------------------------------------------------------


def test_server_finds_the_sa_of_the_key_id():
    lookup = FakeLookup([SA])
    keys = IkeServerKeys(lookup)
    assert (keys.name, keys.ikev2_derived, keys.check_peer) == (KeySourceKind.IKEV2, True, True)
    credentials = server_secret(keys, SA.credentials().key_id, "192.0.2.1")
    assert credentials == SA.credentials()
    assert lookup.asked == [("by_spis", SPI_I, SPI_R)]


@pytest.mark.parametrize(
    "tail",
    [bytes(64), b"\xff" * 64, os.urandom(64), b"IPPM" * 16],
    ids=["zeros", "ones", "random", "text"],
)
def test_server_ignores_key_id_octets_16_to_79(tail):
    lookup = FakeLookup([SA])
    credentials = server_secret(IkeServerKeys(lookup), SPI_I + SPI_R + tail, "192.0.2.1")
    assert credentials is not None and credentials.secret == KEY
    assert lookup.asked == [("by_spis", SPI_I, SPI_R)]


@pytest.mark.parametrize(
    "key_id",
    [
        os.urandom(16) + bytes(64),
        SPI_R + SPI_I + bytes(64),  # SPIs swapped
        SPI_I + bytes(8) + bytes(64),  # SPIr zero (a half-open SA has none)
        bytes(80),
    ],
    ids=["unknown", "swapped", "no-spi-r", "zero"],
)
def test_server_unknown_spis_is_none(key_id):
    lookup = FakeLookup([SA])
    assert server_secret(IkeServerKeys(lookup), key_id, "192.0.2.1") is None
    assert lookup.asked == [("by_spis", key_id[:8], key_id[8:16])]


@pytest.mark.parametrize("peer", ["192.0.2.2", "198.51.100.1", "::ffff:192.0.2.2", "2001:db8::1"])
def test_server_refuses_the_sa_of_another_peer(peer):
    with pytest.raises(KeySourceError) as caught:
        server_secret(IkeServerKeys(FakeLookup([SA])), SA.credentials().key_id, peer)
    message = str(caught.value)
    assert SA.label in message and "192.0.2.1" in message and peer in message
    no_key_in(message)
    no_key_in(repr(caught.value))


def test_server_peer_check_off_accepts_another_peer():
    keys = IkeServerKeys(FakeLookup([SA]), check_peer=False)
    credentials = server_secret(keys, SA.credentials().key_id, "203.0.113.9")
    assert credentials is not None and credentials.secret == KEY


def test_server_peer_check_ipv6():
    sa = SaKey(SPI_I, SPI_R, "2001:db8::7", KEY)
    keys = IkeServerKeys(FakeLookup([sa]))
    assert server_secret(keys, sa.credentials().key_id, "2001:db8::7") is not None
    with pytest.raises(KeySourceError):
        server_secret(keys, sa.credentials().key_id, "2001:db8::8")


def test_server_peer_check_ipv4_mapped():
    sa = SaKey(SPI_I, SPI_R, "::ffff:192.0.2.1", KEY)
    assert server_secret(IkeServerKeys(FakeLookup([sa])), sa.credentials().key_id, "192.0.2.1")


def test_server_and_client_agree_on_the_secret_key():
    """D2: the IPPM key takes the pass-phrase's place in PBKDF2; the Token opens on the server."""
    greeting = ServerGreeting(
        int(TwampMode.AUTHENTICATED | TwampMode.IKEV2_DERIVED), os.urandom(16), os.urandom(16), 1024
    )
    client = IkeClientKeys(FakeLookup([SA]), Policy.REQUIRE)
    ours = asyncio.run(client.credentials_for("192.0.2.1"))
    response, channels = client_setup(
        greeting, TwampMode.AUTHENTICATED, ours, os.urandom, int(TwampMode.IKEV2_DERIVED)
    )
    assert response.mode == 0x82
    assert response.key_id == SPI_I + SPI_R + bytes(64)
    theirs = server_secret(IkeServerKeys(FakeLookup([SA])), response.key_id, "192.0.2.1")
    assert theirs is not None
    server_channels, _ = server_setup(greeting, response, theirs, os.urandom(16))
    assert server_channels.keys == channels.keys


# --- client: IkeClientKeys and the policies of D6 -------------------------------------------


def test_policy_initiate_sets_up_an_sa_and_logs_it(caplog):
    lookup = FakeLookup(can_initiate=SA)
    keys = IkeClientKeys(lookup)
    assert keys.policy is Policy.INITIATE and keys.ikev2_derived
    with caplog.at_level(logging.INFO, logger="otwamp.keys"):
        credentials = asyncio.run(keys.credentials_for("192.0.2.1"))
    assert credentials == SA.credentials()
    assert lookup.asked == [("for_peer", "192.0.2.1", True)]
    [record] = [r for r in caplog.records if r.name == "otwamp.keys"]
    assert record.levelno == logging.INFO
    assert f"using IKE SA {SA.label} with 192.0.2.1" in record.getMessage()
    no_key_in(caplog.text)


def test_policy_initiate_uses_an_existing_sa_without_a_log_line(caplog):
    lookup = FakeLookup([SA])
    with caplog.at_level(logging.DEBUG, logger="otwamp.keys"):
        assert asyncio.run(IkeClientKeys(lookup).credentials_for("192.0.2.1")).secret == KEY
    assert lookup.asked == [("for_peer", "192.0.2.1", True)]
    assert [r for r in caplog.records if r.name == "otwamp.keys"] == []


def test_policy_initiate_that_fails():
    fallback = FakeFallback()
    keys = IkeClientKeys(FakeLookup(), Policy.INITIATE, fallback)
    with pytest.raises(KeySourceError, match=r"no IKE SA with 192\.0\.2\.1 .*policy initiate"):
        asyncio.run(keys.credentials_for("192.0.2.1"))
    assert fallback.calls == []


def test_policy_initiate_passes_the_set_up_failure_on():
    failure = KeySourceError("could not set up an IKE SA with 192.0.2.1: no answer")
    keys = IkeClientKeys(FakeLookup(failure=failure))
    with pytest.raises(KeySourceError, match="could not set up an IKE SA"):
        asyncio.run(keys.credentials_for("192.0.2.1"))


def test_policy_require_never_initiates_nor_falls_back():
    fallback = FakeFallback()
    lookup = FakeLookup(can_initiate=SA)
    keys = IkeClientKeys(lookup, Policy.REQUIRE, fallback)
    with pytest.raises(KeySourceError) as caught:
        asyncio.run(keys.credentials_for("192.0.2.1"))
    assert str(caught.value) == "no IKE SA with 192.0.2.1 (key source ikev2, policy require)"
    assert lookup.asked == [("for_peer", "192.0.2.1", False)]
    assert fallback.calls == []


def test_policy_require_with_an_sa():
    keys = IkeClientKeys(FakeLookup([SA]), Policy.REQUIRE)
    assert asyncio.run(keys.credentials_for("192.0.2.1")) == SA.credentials()


def test_policy_fallback_prefers_the_sa():
    fallback = FakeFallback()
    lookup = FakeLookup([SA])
    keys = IkeClientKeys(lookup, Policy.FALLBACK, fallback)
    assert asyncio.run(keys.credentials_for("192.0.2.1")).source == "ikev2"
    assert lookup.asked == [("for_peer", "192.0.2.1", False)]
    assert fallback.calls == []


def test_policy_fallback_without_an_sa_logs_and_uses_the_passphrase(caplog):
    fallback = FakeFallback()
    lookup = FakeLookup(can_initiate=SA)
    keys = IkeClientKeys(lookup, Policy.FALLBACK, fallback)
    with caplog.at_level(logging.INFO, logger="otwamp.keys"):
        credentials = asyncio.run(keys.credentials_for("192.0.2.1"))
    assert (credentials.source, credentials.label) == ("passphrase", "alice")
    assert lookup.asked == [("for_peer", "192.0.2.1", False)]  # fallback never initiates
    assert fallback.calls == ["192.0.2.1"]
    [record] = [r for r in caplog.records if r.name == "otwamp.keys"]
    assert record.levelno == logging.ERROR
    assert record.getMessage() == "no IKE SA with 192.0.2.1: falling back to the pass-phrase key"


def test_policy_fallback_without_a_passphrase_fails():
    keys = IkeClientKeys(FakeLookup(), Policy.FALLBACK)
    with pytest.raises(KeySourceError, match="policy fallback"):
        asyncio.run(keys.credentials_for("192.0.2.1"))


def test_policy_fallback_when_the_ike_daemon_is_down():
    fallback = FakeFallback()
    failure = KeySourceError("no IKE daemon answers on /run/otwamp/ike.sock: No such file")
    keys = IkeClientKeys(FakeLookup(failure=failure), Policy.FALLBACK, fallback)
    assert asyncio.run(keys.credentials_for("192.0.2.1")).source == "passphrase"


@pytest.mark.parametrize("policy", list(Policy))
def test_no_key_in_client_errors(policy):
    other = SaKey(SPI_I, SPI_R, "192.0.2.99", KEY)
    keys = IkeClientKeys(FakeLookup([other]), policy)
    with pytest.raises(KeySourceError) as caught:
        asyncio.run(keys.credentials_for("192.0.2.1"))
    no_key_in(str(caught.value))
    no_key_in(repr(caught.value))


# --- BrokerLookup against a fake key broker --------------------------------------------------


@dataclass
class FakeBroker:
    """A one-answer-per-line UNIX socket server in a thread; ``answers`` maps ops to answers."""

    path: Path
    answers: dict[str, dict[str, object]] = field(default_factory=dict)
    requests: list[dict[str, object]] = field(default_factory=list)
    delay: float = 0.0  # seconds before each answer

    def serve(self, server: socket.socket, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(5)
            try:
                with conn, conn.makefile("rwb") as stream:
                    self.answer(stream)
            except OSError:
                pass  # the client gave up first

    def answer(self, stream: BinaryIO) -> None:
        for line in stream:
            request = json.loads(line)
            self.requests.append(request)
            time.sleep(self.delay)
            stream.write(json.dumps(self.answers[str(request["op"])]).encode() + b"\n")
            stream.flush()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[FakeBroker]:
    """A fake key broker listening on tmp_path/broker.sock."""
    fake = FakeBroker(tmp_path / "broker.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(fake.path))
    server.listen()
    server.settimeout(0.05)
    stop = threading.Event()
    thread = threading.Thread(target=fake.serve, args=(server, stop), daemon=True)
    thread.start()
    yield fake
    stop.set()
    thread.join(3)
    server.close()


def _key_answer(host: str = "192.0.2.1", port: int = 500, **extra: object) -> dict[str, object]:
    return {
        "ok": True,
        "spi_i": SPI_I.hex(),
        "spi_r": SPI_R.hex(),
        "peer": fmt(host, port),
        "host": host,
        "port": port,
        "key": KEY.hex(),
    } | extra


@pytest.mark.parametrize(("host", "port"), [("192.0.2.1", 500), ("::1", 4500)])
def test_broker_lookup_by_spis(broker, host, port):
    broker.answers["key"] = _key_answer(host, port)
    sa = asyncio.run(BrokerLookup(broker.path).by_spis(SPI_I, SPI_R))
    assert sa == SaKey(SPI_I, SPI_R, host, KEY)
    assert broker.requests == [{"op": "key", "spi_i": SPI_I.hex(), "spi_r": SPI_R.hex()}]
    # The server side: an IPv6 peer's SA is the one of a control connection from ::1.
    if host == "::1":
        assert server_secret(
            IkeServerKeys(BrokerLookup(broker.path)), sa.credentials().key_id, "::1"
        )


@pytest.mark.parametrize("initiated", [True, False])
def test_broker_lookup_for_peer_tells_whether_the_daemon_initiated(broker, initiated):
    broker.answers["peer"] = _key_answer(initiated=initiated)
    found = asyncio.run(BrokerLookup(broker.path).for_peer("192.0.2.1", True))
    assert found == PeerSa(SaKey(SPI_I, SPI_R, "192.0.2.1", KEY), initiated)


def test_broker_lookup_unknown_and_absent(broker, tmp_path):
    broker.answers["key"] = {"ok": False, "error": "no such IKE SA"}
    broker.answers["peer"] = {"ok": False, "error": "no such IKE SA"}
    assert asyncio.run(BrokerLookup(broker.path).by_spis(SPI_I, SPI_R)) is None
    assert asyncio.run(BrokerLookup(broker.path).for_peer("192.0.2.1", False)) is None
    absent = BrokerLookup(tmp_path / "absent.sock")
    with pytest.raises(KeySourceError, match=r"no answer from the IKE key broker at .*absent"):
        asyncio.run(absent.by_spis(SPI_I, SPI_R))
    with pytest.raises(KeySourceError, match="no IKE daemon answers"):
        asyncio.run(absent.for_peer("192.0.2.1", True))


def test_a_slow_broker_does_not_stall_the_event_loop(broker):
    """The server's key lookup is awaited: other coroutines run while the broker thinks."""
    broker.answers["key"] = _key_answer()
    broker.delay = 1.0
    keys = IkeServerKeys(BrokerLookup(broker.path))

    async def ticker(lags: list[float]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(0.01)
            lags.append(loop.time() - before - 0.01)

    async def scenario() -> tuple[Credentials | None, float, list[float]]:
        lags: list[float] = []
        ticking = asyncio.create_task(ticker(lags))
        await asyncio.sleep(0)
        started = time.monotonic()
        credentials = await keys.server_secret(SA.credentials().key_id, "192.0.2.1")
        took = time.monotonic() - started
        ticking.cancel()
        return credentials, took, lags

    credentials, took, lags = asyncio.run(scenario())
    assert credentials == SA.credentials()
    assert took >= 0.95  # the answer really came a second later ...
    assert len(lags) >= 40 and max(lags) < 0.05  # ... and the loop kept running meanwhile


def test_a_broker_slower_than_the_timeout_is_a_key_source_error(broker):
    broker.answers["key"] = _key_answer()
    broker.delay = 1.0
    lookup = BrokerLookup(broker.path, timeout=0.2)
    started = time.monotonic()
    with pytest.raises(KeySourceError, match=r"broker\.sock did not answer within 0\.2 s"):
        asyncio.run(lookup.by_spis(SPI_I, SPI_R))
    assert time.monotonic() - started < 0.9
