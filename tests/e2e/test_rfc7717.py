"""RFC 7717 end to end (issue 6, "Verified by"): O/TWAMP keyed by prf(SK_d, "IPPM") of an IKE SA.

Real ``otwamp server`` processes with an embedded IKEv2 responder and real ``otwamp ping`` /
``otwamp owping`` processes whose embedded IKEv2 initiator sets up the SA, both sides
authenticated by ECDSA P-256 certificates from a throwaway CA. The client is 127.0.0.1 and the
server 127.0.0.2 over IPv4; over IPv6 both are ::1 (the only IPv6 address on ``lo``), the IKE
daemons on different ports. Where a test must drive the IKE SA (rekey, delete), the client's
``otwamp ike`` runs in a thread of the test (``ThreadedIke``) and the CLI client takes keys from
its key broker (``--ike-socket``).

Then: the key strongSwan's charon implies (its ``ike = 4`` log of SK_d) is the key our
measurement side uses, and the failures of the issue: unknown SPIs, an SA of another peer, a
rekey and a delete during a running session, each client policy, a legacy pass-phrase client.
"""

import asyncio
import contextlib
import hmac
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from otwamp.control.server_policy import fmt
from otwamp.drivers.ike_lookup import BrokerLookup
from otwamp.ike.sa import IkeSa
from otwamp.keys.ikev2 import SaKey
from otwamp.keys.source import Credentials, KeySourceKind
from otwamp.wire.registry import Accept, OwampMode, TwampMode
from tests.e2e.ike_support import (
    CLIENT_ID,
    IDENTITY,
    SERVER_ID,
    IkePeer,
    Logged,
    Pki,
    Server,
    background_cli,
    endpoint,
    free_port,
    ike_command,
    make_pki,
    otwamp_command,
    raw_set_up,
    report,
    running_server,
    threaded_ike,
    wait_until,
    write_ike_config,
    write_ike_pair,
    write_keyfile,
)
from tests.e2e.processes import run_cli

UDP = socket.SOCK_DGRAM
FAMILIES = {"ipv4": ("127.0.0.2", "127.0.0.1"), "ipv6": ("::1", "::1")}
IKEV2_BIT = {"twamp": int(TwampMode.IKEV2_DERIVED), "owamp": int(OwampMode.IKEV2_DERIVED)}
ACCEPT_6 = "Accept 6 (no IKEv2 SA matches the KeyID's SPIs (RFC 7717 §5.2))"
COUNT = 20


@dataclass
class Setup:
    """A server with an embedded IKE responder (and a pass-phrase file), and the client's
    IKE configuration that initiates to it."""

    server: Server
    server_host: str
    client_host: str
    init_config: Path
    keyfile: Path
    pki: Pki
    directory: Path

    def client_config(self, name: str, **changes: object) -> Path:
        """Another client IKE configuration towards this server's responder."""
        address = str(changes.get("address", self.client_host))
        peer_port = changes.get("peer_port", self.server.ike_port)
        assert isinstance(peer_port, int)
        return write_ike_config(
            self.directory / f"{name}.toml",
            address=address,
            port=free_port(address, UDP),
            local_id=CLIENT_ID,
            pki=self.pki,
            peers=[IkePeer(SERVER_ID, self.server_host, peer_port)],
        )


@contextlib.contextmanager
def ike_setup(
    pki: Pki, directory: Path, family: str, *server_args: str, ike_address: str | None = None
) -> Iterator[Setup]:
    """``otwamp server --ike-config resp.toml --keyfile ...`` and a matching client config;
    the server's IKE responder binds ``ike_address`` (default: the server's address)."""
    server_host, client_host = FAMILIES[family]
    ike_address = ike_address or server_host
    directory.mkdir(parents=True, exist_ok=True)
    resp, init, resp_port = write_ike_pair(directory, pki, server_host, client_host, ike_address)
    keyfile = write_keyfile(directory / "keys.pfs")
    with running_server(
        server_host,
        directory,
        *("--ike-config", str(resp), "--keyfile", str(keyfile), *server_args),
        ike_port=resp_port,
    ) as server:
        server.process.wait_for(f"listening on {fmt(ike_address, resp_port)}")
        yield Setup(server, server_host, client_host, init, keyfile, pki, directory)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def setups(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Setup]]:
    """``setups(family)``: one server per family for the module, started on first use."""
    started: dict[str, Setup] = {}
    with contextlib.ExitStack() as stack:

        def get(family: str) -> Setup:
            if family not in started:
                directory = tmp_path_factory.mktemp(family)
                started[family] = stack.enter_context(ike_setup(pki, directory, family))
            return started[family]

        yield get
        for setup in started.values():
            assert "Traceback" not in setup.server.log(), setup.server.log()


def measure(protocol: str, target: str, *args: str, count: int = COUNT) -> list[str]:
    """The arguments of a short ``otwamp ping``/``owping`` run."""
    command = "ping" if protocol == "twamp" else "owping"
    return [command, target, "-c", str(count), "-i", "0.005", "--wait", "0.5", *args]


def all_received(document: dict[str, Any], protocol: str, count: int = COUNT) -> None:
    """Every packet of every direction arrived, none lost."""
    directions = (
        [document["packets"]]
        if protocol == "twamp"
        else [document["to"]["packets"], document["from"]["packets"]]
    )
    for packets in directions:
        assert (packets["sent"], packets["received"], packets["lost"]) == (count, count, 0)


def authenticated_line(setup: Setup, spi_i: str, spi_r: str, protocol: str, mode: str) -> str:
    """The server's log line for a connection keyed by the SA ``spi_i``/``spi_r``."""
    pattern = re.compile(
        rf"authenticated KeyID 'SPIi={spi_i} SPIr={spi_r}' \(ikev2\) from "
        rf"{re.escape(endpoint(setup.client_host, 0)[:-1])}\d+, {protocol.upper()} mode {mode}$",
        re.MULTILINE,
    )
    match = pattern.search(setup.server.log())
    assert match, f"no authenticated line for {spi_i}/{spi_r}:\n{setup.server.log()}"
    return match.group(0)


def credentials(sa: IkeSa | SaKey, tail: bytes = bytes(64)) -> Credentials:
    """The KeyID and IPPM key of an SA, with ``tail`` as KeyID octets 16-79."""
    return Credentials(sa.spi_i + sa.spi_r + tail, sa_key(sa), "ikev2", "test")


def sa_key(sa: IkeSa | SaKey) -> bytes:
    return sa.ippm_key if isinstance(sa, IkeSa) else sa.key


def spis(sa: IkeSa) -> tuple[str, str]:
    return sa.spi_i.hex(), sa.spi_r.hex()


def spis_in(line: str) -> tuple[str, str]:
    """SPIi and SPIr of an ``IKE SA SPIi/SPIr ...`` log line."""
    match = re.search(r"IKE SA ([0-9a-f]{16})/([0-9a-f]{16})", line)
    assert match, line
    return match.group(1), match.group(2)


def ike_sa(sa: IkeSa) -> dict[str, str]:
    """The ``ike_sa`` object of a report keyed by ``sa``."""
    return {"spi_i": sa.spi_i.hex(), "spi_r": sa.spi_r.hex()}


# --- 1. end to end over IPv4 and IPv6, certificate-authenticated SAs ------------------------

MATRIX = [
    ("twamp", "authenticated"),
    ("twamp", "encrypted"),
    ("twamp", "mixed"),
    ("owamp", "authenticated"),
    ("owamp", "encrypted"),
]


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
@pytest.mark.parametrize(("protocol", "mode"), MATRIX)
def test_ikev2_derived_key_end_to_end(setups, family, protocol, mode):
    setup = setups(family)
    result = run_cli(
        *measure(protocol, setup.server.target(protocol), "-A", mode),
        *("--key-source", "ike", "--ike-config", str(setup.init_config), "--json"),
    )
    assert result.returncode == 0, result.stderr
    document = report(result.stdout)
    assert (document["protocol"], document["mode"], document["key_source"]) == (
        protocol,
        mode,
        "ikev2",
    )
    all_received(document, protocol)
    spi_i, spi_r = document["ike_sa"]["spi_i"], document["ike_sa"]["spi_r"]
    assert re.fullmatch("[0-9a-f]{16}", spi_i) and re.fullmatch("[0-9a-f]{16}", spi_r)
    # The client's initiator set the SA up with the server's responder, with certificates
    # (neither configuration has a PSK, so AUTH was signed with the P-256 keys) ...
    assert "psk" not in setup.init_config.read_text()
    log = setup.server.log()
    [established] = [
        line for line in log.splitlines() if f"IKE SA {spi_i}/{spi_r} established" in line
    ]
    assert re.search(rf"with {re.escape(fmt(setup.client_host, 0)[:-1])}\d+, ", established)
    assert f"{SERVER_ID} <-> {CLIENT_ID}" in established and "we are responder" in established
    # ... and the server keyed the control connection with it (Mode had the IKEv2 bit).
    authenticated_line(setup, spi_i, spi_r, protocol, mode)


def test_text_report_names_the_ike_sa(setups):
    setup = setups("ipv4")
    result = run_cli(
        *measure("twamp", setup.server.twamp, "-A", "authenticated"),
        *("--key-source", "ike", "--ike-config", str(setup.init_config)),
    )
    assert result.returncode == 0, result.stderr
    [line] = [line for line in result.stdout.splitlines() if line.startswith("keyed by IKE SA")]
    match = re.fullmatch(
        r"keyed by IKE SA SPIi=([0-9a-f]{16}) SPIr=([0-9a-f]{16}) \(RFC 7717\)", line
    )
    assert match, line
    authenticated_line(setup, match.group(1), match.group(2), "twamp", "authenticated")


# --- 2. the key strongSwan implies ----------------------------------------------------------

CHARON_PORT, OUR_PORT = 15500, 15600  # inside the namespace; neither is 500 (D8)
CHARON_ID, OUR_ID = "init.ippm.test", "resp.ippm.test"

# Our TWAMP client inside the namespace, keyed by what charon's log implies: SPIs and the key
# come on stdin (never on the command line), one JSON summary goes to stdout (no key).
CHARON_CLIENT = textwrap.dedent(
    """
    import asyncio, json, sys
    from otwamp.drivers.control_client import PingSettings
    from otwamp.drivers.twamp_client import ping
    from otwamp.keys.ikev2 import IkeClientKeys, PeerSa, Policy, SaKey
    from otwamp.wire.registry import TwampMode

    given = json.loads(sys.stdin.read())
    sa = SaKey(bytes.fromhex(given["spi_i"]), bytes.fromhex(given["spi_r"]), "127.0.0.1",
               bytes.fromhex(given["key"]))

    class CharonsSa:
        async def by_spis(self, spi_i, spi_r):
            return sa if (spi_i, spi_r) == (sa.spi_i, sa.spi_r) else None

        async def for_peer(self, host, initiate):
            return PeerSa(sa, initiated=False)

    settings = PingSettings("127.0.0.1", int(sys.argv[1]), count=20, interval=0.005, wait=0.5,
                            modes=(TwampMode.AUTHENTICATED,),
                            keys=IkeClientKeys(CharonsSa(), Policy.REQUIRE))
    outcome = asyncio.run(ping(settings))
    record = outcome.record
    print(json.dumps({"problem": outcome.problem, "spis": outcome.ike_spis,
                      "sent": len(record.sent), "replies": len(record.replies)}))
    """
)


@pytest.fixture
def netns():
    name = f"otw7717{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=True)


def _charon_available() -> bool:
    return (
        os.geteuid() == 0
        and shutil.which("ip") is not None
        and Path("/usr/sbin/charon-systemd").exists()
    )


@pytest.mark.netns
@pytest.mark.skipif(not _charon_available(), reason="needs root, ip netns and charon-systemd")
@pytest.mark.parametrize(
    ("proposal", "hash_name"),
    [("aes128-sha256-x25519", "sha256"), ("aes256-sha384-ecp384", "sha384")],
)
def test_the_key_strongswan_implies(netns, tmp_path, proposal, hash_name):
    from tests.ike.interop.charon import PSK, Charon, Connection

    # Our `otwamp ike` (responder, key broker) and `otwamp server --ike-socket`, in the netns.
    sock = tmp_path / "ike.sock"
    config = write_ike_config(
        tmp_path / "ours.toml",
        address="127.0.0.1",
        port=OUR_PORT,
        local_id=OUR_ID,
        broker=sock,
        peers=[IkePeer(CHARON_ID, "127.0.0.1", CHARON_PORT, psk=PSK)],
        extra=f'proposals = ["{proposal}"]',
    )
    in_netns = ["ip", "netns", "exec", netns]
    with contextlib.ExitStack() as stack:
        daemon = Logged([*in_netns, *ike_command(), "--config", str(config)], tmp_path / "ike.log")
        stack.callback(daemon.stop)
        daemon.wait_for(f"listening on 127.0.0.1:{OUR_PORT}")
        twamp_port = 18620
        server = Logged(
            [
                *in_netns,
                *otwamp_command(),
                "server",
                *("--listen", f"127.0.0.1:{twamp_port}", "--owamp-listen", "off"),
                *("--modes", "authenticated", "--ike-socket", str(sock)),
            ],
            tmp_path / "server.log",
        )
        stack.callback(server.stop)
        server.wait_for(f"listening for TWAMP-Control on 127.0.0.1:{twamp_port}")

        connection = Connection(
            CHARON_ID, OUR_ID, proposal, CHARON_PORT, initiator=True, remote_port=OUR_PORT
        )
        charon = Charon(netns, tmp_path / "charon", connection)
        charon.start()
        stack.callback(charon.stop)
        charon.swanctl("--initiate", "--ike", "ippm")
        daemon.wait_for(" established ")
        match = re.search(r"IKE SA ([0-9a-f]{16})/([0-9a-f]{16}) established", daemon.log())
        assert match
        spi_i, spi_r = match.group(1), match.group(2)
        assert spi_i in charon.swanctl("--list-sas")

        # What our key source hands the measurement side for that SA ...
        lookup = BrokerLookup(sock).by_spis(bytes.fromhex(spi_i), bytes.fromhex(spi_r))
        sa = asyncio.run(lookup)
        assert sa is not None and sa.peer == "127.0.0.1"
        ours = sa.credentials()
        assert ours.key_id == bytes.fromhex(spi_i + spi_r) + bytes(64)
        # ... is HMAC-<prf>(SK_d, "IPPM") from the SK_d charon logged (compared, never shown).
        theirs = charon.ippm_keys(hash_name)
        assert theirs, "charon logged no SK_d"
        assert any(hmac.compare_digest(ours.secret.hex(), key) for key in theirs), (
            "our IPPM key is not the one charon's SK_d implies"
        )
        assert len(ours.secret) == {"sha256": 32, "sha384": 48}[hash_name]

        # The key charon implies keys a TWAMP session with our server (RFC 7717 §5.1, D2).
        given = json.dumps({"spi_i": spi_i, "spi_r": spi_r, "key": theirs[-1]})
        client = subprocess.run(
            [*in_netns, sys.executable, "-c", CHARON_CLIENT, str(twamp_port)],
            input=given,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert client.returncode == 0, client.stderr
        outcome = json.loads(client.stdout)
        assert outcome == {"problem": None, "spis": [spi_i, spi_r], "sent": 20, "replies": 20}
        assert f"authenticated KeyID 'SPIi={spi_i} SPIr={spi_r}' (ikev2)" in server.log()
        for log in (daemon.log(), server.log(), client.stdout, client.stderr):
            assert ours.secret.hex() not in log, "a key leaked into a log"


# --- 3. failures ----------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
@pytest.mark.parametrize("protocol", ["twamp", "owamp"])
def test_unknown_spis_accept_6_on_the_wire(setups, family, protocol):
    setup = setups(family)
    port = setup.server.twamp_port if protocol == "twamp" else setup.server.owamp_port
    fabricated = os.urandom(16)
    key = Credentials(fabricated + bytes(64), os.urandom(32), "ikev2", "fabricated")
    result = raw_set_up(
        (setup.server_host, port),
        key,
        TwampMode.AUTHENTICATED,
        IKEV2_BIT[protocol],
    )
    assert result.greeting.modes & IKEV2_BIT[protocol]
    assert int.from_bytes(result.sent[:4], "big") == 0x02 | IKEV2_BIT[protocol]
    assert result.sent[4:20] == fabricated  # KeyID octets 0-15: SPIi | SPIr (D4)
    assert result.start.accept == Accept.NO_IKEV2_SA and int(Accept.NO_IKEV2_SA) == 6
    line = f"no IKEv2 SA with SPIi={fabricated[:8].hex()} SPIr={fabricated[8:].hex()}"
    wait_until(lambda: line in setup.server.log(), "the server's log line")
    assert key.secret.hex() not in setup.server.log()


def test_unknown_spis_cli_message_and_server_log(setups, tmp_path, caplog):
    """The client's SA is with another responder at the server's address: its SPIs are
    unknown to the server, which answers Accept 6 and keeps serving."""
    setup = setups("ipv4")
    impostor_port = free_port("127.0.0.2", UDP)
    impostor = write_ike_config(
        tmp_path / "impostor.toml",
        address="127.0.0.2",
        port=impostor_port,
        local_id=SERVER_ID,
        pki=setup.pki,
        peers=[IkePeer(CLIENT_ID)],
    )
    client = setup.client_config("to-impostor", peer_port=impostor_port)
    with caplog.at_level(logging.INFO, logger="otwamp.ike"), threaded_ike(impostor):
        result = run_cli(
            *measure("twamp", setup.server.twamp, "-A", "authenticated"),
            *("--key-source", "ike", "--ike-config", str(client)),
        )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last == f"otwamp: the server refused the connection set-up: {ACCEPT_6}"
    [established] = [r.getMessage() for r in caplog.records if " established " in r.getMessage()]
    spi_i, spi_r = spis_in(established)
    assert re.search(
        rf"authentication failed from 127\.0\.0\.1:\d+: "
        rf"no IKEv2 SA with SPIi={spi_i} SPIr={spi_r}$",
        setup.server.log(),
        re.MULTILINE,
    )
    # The server keeps serving.
    again = run_cli(
        *measure("twamp", setup.server.twamp, "-A", "authenticated"),
        *("--key-source", "ike", "--ike-config", str(setup.init_config)),
    )
    assert again.returncode == 0, again.stderr


def test_key_id_octets_16_to_79_are_ignored(setups, tmp_path):
    setup = setups("ipv4")
    with threaded_ike(setup.client_config("tail")) as ike:
        sa = ike.initiate(setup.server_host)
        for protocol in ("twamp", "owamp"):
            port = setup.server.twamp_port if protocol == "twamp" else setup.server.owamp_port
            result = raw_set_up(
                (setup.server_host, port),
                credentials(sa, os.urandom(64)),
                TwampMode.ENCRYPTED,
                IKEV2_BIT[protocol],
            )
            assert result.start.accept == Accept.OK, protocol


@pytest.mark.parametrize("check", ["checked", "unchecked"])
def test_sa_of_another_peer(pki, tmp_path, check):
    """The SA is the IKE peer 127.0.0.3's, the control connection comes from 127.0.0.1: Accept 6,
    unless the server runs with --no-ike-peer-check (NAT, D7)."""
    flags = () if check == "checked" else ("--no-ike-peer-check",)
    with ike_setup(pki, tmp_path / check, "ipv4", *flags) as setup:
        elsewhere = setup.client_config("elsewhere", address="127.0.0.3")
        result = run_cli(
            *measure("twamp", setup.server.twamp, "-A", "authenticated"),
            *("--key-source", "ike", "--ike-config", str(elsewhere), "--json"),
        )
        log = setup.server.log()
        [established] = [line for line in log.splitlines() if " established " in line]
        assert "with 127.0.0.3:" in established
        spi_i, spi_r = spis_in(established)
        if check == "checked":
            assert result.returncode == 1
            assert result.stderr.strip().endswith(ACCEPT_6)
            assert re.search(
                rf"authentication failed from 127\.0\.0\.1:\d+: the IKE SA SPIi={spi_i} "
                rf"SPIr={spi_r} belongs to 127\.0\.0\.3, not to 127\.0\.0\.1$",
                log,
                re.MULTILINE,
            ), log
            # The same SA from its own peer's address is fine (a raw client bound to 127.0.0.3).
            with threaded_ike(setup.client_config("raw", address="127.0.0.3")) as ike:
                sa = ike.initiate(setup.server_host)
                for source, accept in (("127.0.0.3", Accept.OK), ("127.0.0.1", 6)):
                    started = raw_set_up(
                        (setup.server_host, setup.server.twamp_port),
                        credentials(sa),
                        TwampMode.AUTHENTICATED,
                        IKEV2_BIT["twamp"],
                        source=source,
                    )
                    assert started.start.accept == accept, source
        else:
            assert result.returncode == 0, result.stderr
            document = report(result.stdout)
            assert document["ike_sa"] == {"spi_i": spi_i, "spi_r": spi_r}
            all_received(document, "twamp")
            authenticated_line(setup, spi_i, spi_r, "twamp", "authenticated")


def test_dual_stack_ike_responder_and_an_ipv4_client(pki, tmp_path):
    with ike_setup(pki, tmp_path, "ipv4", ike_address="::") as setup:
        result = run_cli(
            *measure("twamp", setup.server.twamp, "-A", "authenticated"),
            *("--key-source", "ike", "--ike-config", str(setup.init_config), "--json"),
        )
        assert result.returncode == 0, result.stderr + setup.server.log()
        all_received(report(result.stdout), "twamp")


def _broker_client(
    setup: Setup, protocol: str, broker: Path, count: int, interval: float, mode: str
) -> contextlib.AbstractContextManager[subprocess.Popen[str]]:
    """``ping``/``owping`` in the background, keys from the broker, policy require."""
    command = "ping" if protocol == "twamp" else "owping"
    return background_cli(
        command,
        setup.server.target(protocol),
        *("-c", str(count), "-i", str(interval), "--wait", "0.5", "-A", mode),
        *("--key-source", "ike", "--ike-socket", str(broker), "--ike-policy", "require", "--json"),
    )


def test_rekey_during_a_twamp_session(setups):
    """D5: the key is pinned for the control connection; the next connection uses the new SA."""
    setup = setups("ipv4")
    count = 120
    with threaded_ike(setup.client_config("rekey")) as ike:
        old = ike.initiate(setup.server_host)
        with _broker_client(setup, "twamp", ike.broker, count, 0.02, "authenticated") as running:
            wait_until(
                lambda: f"SPIi={spis(old)[0]} SPIr={spis(old)[1]}' (ikev2)" in setup.server.log(),
                "the session's set-up",
            )
            new = ike.rekey(old)
            assert spis(new) != spis(old)
            assert not hmac.compare_digest(new.ippm_key, old.ippm_key)
            wait_until(
                lambda: f"IKE SA {'/'.join(spis(old))} deleted" in setup.server.log(),
                "the old SA's deletion on the server",
            )
            rekeyed = f"IKE SA {'/'.join(spis(old))} rekeyed to {'/'.join(spis(new))}"
            assert rekeyed in setup.server.log()
            assert running.poll() is None, "the session ended before the rekey"
            out, err = running.communicate(timeout=30)
        assert running.returncode == 0, err
        document = report(out)
        assert document["ike_sa"] == ike_sa(old)
        all_received(document, "twamp", count)
        # A new control connection after the rekey uses the new SA.
        with _broker_client(setup, "twamp", ike.broker, 5, 0.005, "authenticated") as after:
            out, err = after.communicate(timeout=30)
        assert after.returncode == 0, err
        assert report(out)["ike_sa"] == ike_sa(new)
        authenticated_line(setup, *spis(new), "twamp", "authenticated")
        # The old SA's KeyID is refused now that the SA is gone.
        refused = raw_set_up(
            (setup.server_host, setup.server.twamp_port),
            credentials(old),
            TwampMode.AUTHENTICATED,
            IKEV2_BIT["twamp"],
        )
        assert refused.start.accept == Accept.NO_IKEV2_SA


def test_delete_during_an_owamp_session(setups):
    """D5: a delete of the IKE SA does not disturb the sessions keyed by it."""
    setup = setups("ipv4")
    count = 100
    with threaded_ike(setup.client_config("delete")) as ike:
        sa = ike.initiate(setup.server_host)
        with _broker_client(setup, "owamp", ike.broker, count, 0.02, "encrypted") as running:
            wait_until(
                lambda: f"SPIi={spis(sa)[0]} SPIr={spis(sa)[1]}' (ikev2)" in setup.server.log(),
                "the session's set-up",
            )
            ike.delete(sa)
            wait_until(
                lambda: f"IKE SA {'/'.join(spis(sa))} deleted" in setup.server.log(),
                "the SA's deletion on the server",
            )
            assert ike.sas() == ()
            assert running.poll() is None, "the session ended before the delete"
            out, err = running.communicate(timeout=30)
        assert running.returncode == 0, err
        document = report(out)
        assert document["ike_sa"] == ike_sa(sa)
        all_received(document, "owamp", count)
        # No SA any more: policy require fails clearly, and the deleted SA's KeyID is refused.
        after = run_cli(
            *measure("owamp", setup.server.owamp, "-A", "encrypted"),
            *("--key-source", "ike", "--ike-socket", str(ike.broker), "--ike-policy", "require"),
        )
        assert after.returncode == 1
        assert after.stderr.strip() == (
            f"otwamp: no IKE SA with {setup.server_host} (key source ikev2, policy require)"
        )
        refused = raw_set_up(
            (setup.server_host, setup.server.owamp_port),
            credentials(sa),
            TwampMode.ENCRYPTED,
            IKEV2_BIT["owamp"],
        )
        assert refused.start.accept == Accept.NO_IKEV2_SA


# --- client policies (D6) ------------------------------------------------------------------


def test_policy_initiate_sets_up_an_sa(setups):
    setup = setups("ipv4")
    before = setup.server.log().count(" established ")
    result = run_cli(
        *measure("owamp", setup.server.owamp, "-A", "authenticated"),
        *("--key-source", "ike", "--ike-config", str(setup.init_config), "--json"),
    )
    assert result.returncode == 0, result.stderr
    assert setup.server.log().count(" established ") == before + 1
    document = report(result.stdout)
    authenticated_line(
        setup, document["ike_sa"]["spi_i"], document["ike_sa"]["spi_r"], "owamp", "authenticated"
    )


def test_policy_initiate_logs_the_sa_it_set_up(setups):
    setup = setups("ipv4")
    result = run_cli(
        *measure("twamp", setup.server.twamp, "-A", "authenticated", "-v"),
        *("--key-source", "ike", "--ike-config", str(setup.init_config), "--json"),
    )
    assert result.returncode == 0, result.stderr
    document = report(result.stdout)
    assert document["ike_sa"]["spi_i"] in result.stderr, result.stderr  # at INFO: -v


@pytest.mark.parametrize("protocol", ["twamp", "owamp"])
def test_policy_require_without_a_reachable_ike_peer(setups, protocol):
    setup = setups("ipv4")
    nobody = setup.client_config(f"nobody-{protocol}", peer_port=free_port(setup.server_host, UDP))
    result = run_cli(
        *measure(protocol, setup.server.target(protocol), "-A", "authenticated"),
        *("--key-source", "ike", "--ike-config", str(nobody), "--ike-policy", "require"),
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip() == (
        f"otwamp: no IKE SA with {setup.server_host} (key source ikev2, policy require)"
    )


def test_policy_require_without_an_ike_daemon(setups, tmp_path):
    setup = setups("ipv4")
    result = run_cli(
        *measure("twamp", setup.server.twamp, "-A", "authenticated"),
        *(
            "--key-source",
            "ike",
            "--ike-socket",
            str(tmp_path / "none.sock"),
            "--ike-policy",
            "require",
        ),
    )
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"otwamp: no IKE daemon answers on {tmp_path / 'none.sock'}")


@pytest.mark.parametrize("protocol", ["twamp", "owamp"])
def test_policy_fallback_uses_the_passphrase(setups, protocol):
    setup = setups("ipv4")
    nobody = setup.client_config(
        f"fallback-{protocol}", peer_port=free_port(setup.server_host, UDP)
    )
    result = run_cli(
        *measure(protocol, setup.server.target(protocol), "-A", "authenticated"),
        *("--key-source", "ike", "--ike-config", str(nobody), "--ike-policy", "fallback"),
        *("-u", IDENTITY, "-k", str(setup.keyfile), "--json"),
    )
    assert result.returncode == 0, result.stderr
    assert (
        f"no IKE SA with {setup.server_host}: falling back to the pass-phrase key" in result.stderr
    )
    document = report(result.stdout)
    assert document["key_source"] == "passphrase" and "ike_sa" not in document
    all_received(document, protocol)
    assert f"authenticated KeyID '{IDENTITY}' (passphrase)" in setup.server.log()


def test_policy_fallback_without_an_ike_daemon(setups, tmp_path):
    setup = setups("ipv4")
    result = run_cli(
        *measure("twamp", setup.server.twamp, "-A", "authenticated"),
        *(
            "--key-source",
            "ike",
            "--ike-socket",
            str(tmp_path / "none.sock"),
            "--ike-policy",
            "fallback",
        ),
        *("-u", IDENTITY, "-k", str(setup.keyfile), "--json"),
    )
    assert result.returncode == 0, result.stderr
    assert report(result.stdout)["key_source"] == "passphrase"


@pytest.mark.parametrize("protocol", ["twamp", "owamp"])
def test_legacy_passphrase_client_against_a_server_offering_the_bit(setups, protocol):
    setup = setups("ipv4")
    bit = IKEV2_BIT[protocol]
    port = setup.server.twamp_port if protocol == "twamp" else setup.server.owamp_port
    key = Credentials(IDENTITY.encode().ljust(80, b"\0"), b"", KeySourceKind.PASSPHRASE, IDENTITY)
    greeting = raw_set_up((setup.server_host, port), key, TwampMode.UNAUTHENTICATED, 0).greeting
    assert greeting.modes & bit, "the server does not offer the IKEv2-derived bit"
    result = run_cli(
        *measure(protocol, setup.server.target(protocol), "-A", "authenticated"),
        *("-u", IDENTITY, "-k", str(setup.keyfile), "--json"),
    )
    assert result.returncode == 0, result.stderr
    document = report(result.stdout)
    assert document["key_source"] == "passphrase" and "ike_sa" not in document
    all_received(document, protocol)


def test_otwamp_ike_is_a_subcommand(tmp_path):
    """The tests run ``otwamp ike`` as such (docs/IKE.md)."""
    result = run_cli("ike", "status", "--socket", str(tmp_path / "none.sock"))
    assert result.returncode == 1
    assert result.stderr.startswith("otwamp: no IKE daemon answers on"), result.stderr


def test_ike_client_against_a_server_without_the_bit(pki, tmp_path):
    """The IKE SA exists (a responder at the server's address), but the O/TWAMP server only has
    pass-phrases: the client must not send a Mode bit the server did not offer."""
    keyfile = write_keyfile(tmp_path / "keys.pfs")
    with running_server(
        "127.0.0.2", tmp_path, "--keyfile", str(keyfile), modes="open,authenticated"
    ) as server:
        responder_port = free_port("127.0.0.2", UDP)
        responder = write_ike_config(
            tmp_path / "responder.toml",
            address="127.0.0.2",
            port=responder_port,
            local_id=SERVER_ID,
            pki=pki,
            peers=[IkePeer(CLIENT_ID)],
        )
        client = write_ike_config(
            tmp_path / "client.toml",
            address="127.0.0.1",
            port=free_port("127.0.0.1", UDP),
            local_id=CLIENT_ID,
            pki=pki,
            peers=[IkePeer(SERVER_ID, "127.0.0.2", responder_port)],
        )
        with threaded_ike(responder):
            result = run_cli(
                *measure("twamp", server.twamp, "-A", "authenticated"),
                *("--key-source", "ike", "--ike-config", str(client)),
                *("-u", IDENTITY, "-k", str(keyfile), "--json"),
            )
        assert "was not offered" not in server.log(), server.log()
        assert result.returncode == 0, result.stderr
        assert report(result.stdout)["key_source"] == "passphrase"


def test_policy_initiate_through_the_key_broker(setups):
    """With --ike-socket and the default policy, the daemon behind the broker sets the SA up."""
    setup = setups("ipv4")
    with threaded_ike(setup.client_config("broker-initiate")) as ike:
        assert ike.sas() == ()
        result = run_cli(
            *measure("twamp", setup.server.twamp, "-A", "encrypted"),
            *("--key-source", "ike", "--ike-socket", str(ike.broker), "--json"),
        )
        assert result.returncode == 0, result.stderr
        [sa] = ike.sas()
        assert report(result.stdout)["ike_sa"] == ike_sa(sa)
        assert sa.initiator and sa.peer[0] == setup.server_host
        authenticated_line(setup, *spis(sa), "twamp", "encrypted")


def test_sigterm_of_the_servers_ike_daemon_during_a_session(pki, tmp_path):
    """The server takes keys from a separately run ``otwamp ike`` (--ike-socket). SIGTERM to
    that daemon mid-session deletes the SA (D5: the session completes); afterwards the broker is
    gone, a KeyID gets Accept 6 with a log line, and the server keeps serving."""
    resp_port = free_port("127.0.0.2", UDP)
    broker = tmp_path / "resp.sock"
    resp = write_ike_config(
        tmp_path / "resp.toml",
        address="127.0.0.2",
        port=resp_port,
        local_id=SERVER_ID,
        pki=pki,
        broker=broker,
        peers=[IkePeer(CLIENT_ID, "127.0.0.1")],
    )
    client = write_ike_config(
        tmp_path / "client.toml",
        address="127.0.0.1",
        port=free_port("127.0.0.1", UDP),
        local_id=CLIENT_ID,
        pki=pki,
        peers=[IkePeer(SERVER_ID, "127.0.0.2", resp_port)],
    )
    keyfile = write_keyfile(tmp_path / "keys.pfs")
    daemon = Logged([*ike_command(), "--config", str(resp)], tmp_path / "ike.log")
    try:
        daemon.wait_for(f"listening on 127.0.0.2:{resp_port}")
        server_args = ("--ike-socket", str(broker), "--keyfile", str(keyfile))
        with (
            running_server("127.0.0.2", tmp_path, *server_args, ike_port=resp_port) as server,
            threaded_ike(client) as ike,
        ):
            setup = Setup(server, "127.0.0.2", "127.0.0.1", client, keyfile, pki, tmp_path)
            sa = ike.initiate("127.0.0.2")
            count = 100
            with _broker_client(setup, "twamp", ike.broker, count, 0.02, "encrypted") as running:
                wait_until(
                    lambda: f"SPIi={spis(sa)[0]} SPIr={spis(sa)[1]}' (ikev2)" in server.log(),
                    "the session's set-up",
                )
                assert daemon.stop() == 0
                assert f"IKE SA {'/'.join(spis(sa))} deleted" in daemon.log()
                wait_until(lambda: ike.sas() == (), "the Delete at the client's daemon")
                assert running.poll() is None, "the session ended before the daemon"
                out, err = running.communicate(timeout=30)
            assert running.returncode == 0, err
            all_received(report(out), "twamp", count)
            assert report(out)["ike_sa"] == ike_sa(sa)
            # No broker any more: Accept 6, a log line, and the server goes on serving.
            refused = raw_set_up(
                ("127.0.0.2", server.twamp_port),
                credentials(sa),
                TwampMode.AUTHENTICATED,
                IKEV2_BIT["twamp"],
            )
            assert refused.start.accept == Accept.NO_IKEV2_SA
            wait_until(
                lambda: f"no answer from the IKE key broker at {broker}" in server.log(),
                "the server's log line",
            )
            legacy = run_cli(
                *measure("twamp", server.twamp, "-A", "authenticated"),
                *("-u", IDENTITY, "-k", str(keyfile)),
            )
            assert legacy.returncode == 0, legacy.stderr
            assert "Traceback" not in server.log() + daemon.log()
    finally:
        daemon.stop()


def test_server_config_file_selects_the_ike_key_source(pki, tmp_path):
    """``[server]`` ike_config and ike_check_peer = false in the server's TOML do what
    --ike-config and --no-ike-peer-check do: an SA of 127.0.0.3 keys 127.0.0.1's connection."""
    resp_port = free_port("127.0.0.2", UDP)
    resp = write_ike_config(
        tmp_path / "resp.toml",
        address="127.0.0.2",
        port=resp_port,
        local_id=SERVER_ID,
        pki=pki,
        peers=[IkePeer(CLIENT_ID)],
    )
    config = tmp_path / "server.toml"
    config.write_text(f'[server]\nike_config = "{resp}"\nike_check_peer = false\n')
    client = write_ike_config(
        tmp_path / "client.toml",
        address="127.0.0.3",
        port=free_port("127.0.0.3", UDP),
        local_id=CLIENT_ID,
        pki=pki,
        peers=[IkePeer(SERVER_ID, "127.0.0.2", resp_port)],
    )
    with running_server(
        "127.0.0.2", tmp_path, "--config", str(config), modes="authenticated", ike_port=resp_port
    ) as server:
        server.process.wait_for(f"listening on 127.0.0.2:{resp_port}")
        result = run_cli(
            *measure("owamp", server.owamp, "-A", "authenticated"),
            *("--key-source", "ike", "--ike-config", str(client), "--json"),
        )
        assert result.returncode == 0, result.stderr + server.log()
        document = report(result.stdout)
        assert document["key_source"] == "ikev2"
        all_received(document, "owamp")
        established = f"IKE SA {document['ike_sa']['spi_i']}/{document['ike_sa']['spi_r']} "
        assert f"{established}established with 127.0.0.3:" in server.log()
