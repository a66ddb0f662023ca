"""IKE SA establishments per second: otwamp's IKEv2 against itself and charon against charon.

Both pairings use ECDSA P-256 certificates from one throwaway CA, aes128-sha256-x25519,
childless IKE SAs (RFC 6023) and 127.0.0.1 ports other than 500 (Non-ESP marker, D8):

* ours: an ``otwamp ike --config`` process as responder; the initiator is an ``IkeDaemon``
  in this process, which keeps ``concurrency`` ``initiate()`` calls in flight.
* charon: two ``charon-systemd`` processes (responder and initiator) in a network namespace
  of their own, each with its own config directory; the initiator is driven over its vici
  socket with ``concurrency`` connections, each sending blocking ``initiate`` requests
  (``reuse_ikesa = no``, so every request sets up a new IKE SA; ``threads = 64``, since each
  blocking request holds a worker thread).

A rate is the number of IKE SAs set up divided by the wall time from the first request to
the last IKE SA established; a few warm-up SAs come first and do not count. Both responders
get cookie and half-open thresholds far above ``concurrency``, so neither demands COOKIEs.
charon needs root, ``ip netns`` and /usr/sbin/charon-systemd; without them only ours runs.
"""

import asyncio
import datetime
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import NameOID

from bench.machine import ROOT
from bench.procs import START_TIMEOUT, BenchError, _stop, otwamp_command
from bench.stats import JsonObject, median
from bench.twamp import log

PROPOSAL = "aes128-sha256-x25519"
INIT_ID, RESP_ID = "init.ippm.test", "resp.ippm.test"
CHARON = "/usr/sbin/charon-systemd"
CHARON_RESP_PORT, CHARON_INIT_PORT = 15500, 15600
WARM_UP = 8
# A blocking vici initiate holds one of charon's worker threads until the SA is up: 16 (the
# default) are all taken by 16 requests in flight, and nothing is left to handle the packets.
CHARON_THREADS = 64
HIGH_THRESHOLD = 100_000  # cookie and half-open thresholds the benchmark never reaches
CHARON_PLUGINS = (
    "random nonce openssl pem pkcs1 pkcs8 x509 pubkey revocation constraints sha1 sha2 hmac aes"
    " gmp curve25519 kdf kernel-netlink socket-default vici"
)


def ike_benchmark(count: int, concurrency: int, repeats: int) -> JsonObject:
    """Both pairings, ``repeats`` times each, alternating; ``count`` IKE SAs per run."""
    with tempfile.TemporaryDirectory(prefix="otwamp-bench-ike-") as name:
        directory = Path(name)
        _credentials(directory)
        charon_problem = _charon_problem()
        ours: list[JsonObject] = []
        theirs: list[JsonObject] = []
        charon = _charon_pair(directory) if charon_problem is None else _nothing()
        with _our_responder(directory) as port, charon as vici:
            for repeat in range(repeats):
                run = asyncio.run(_our_run(directory, port, count, concurrency))
                log(f"IKE: ours, run {repeat + 1}: {run['sas_per_s']} SA/s")
                ours.append(run)
                if vici is not None:
                    run = asyncio.run(_charon_run(vici, count, concurrency))
                    log(f"IKE: charon, run {repeat + 1}: {run['sas_per_s']} SA/s")
                    theirs.append(run)
    result: JsonObject = {
        "note": (
            "IKE SA establishments per second over 127.0.0.1 (ECDSA P-256 certificates, "
            f"{PROPOSAL}, childless), {concurrency} set-ups in flight; "
            "ours: otwamp ike responder process, IkeDaemon initiator in the bench process; "
            "charon: charon-systemd initiator driven over vici against a charon-systemd responder"
        ),
        "proposal": PROPOSAL,
        "auth": "ecdsa-p256 certificates (RFC 7427)",
        "count": count,
        "concurrency": concurrency,
        "ours": _summary(ours),
    }
    if charon_problem is None:
        result["charon"] = _summary(theirs)
        ours_rate, their_rate = result["ours"]["sas_per_s"], result["charon"]["sas_per_s"]
        result["ratio"] = round(ours_rate / their_rate, 2) if their_rate else None
    else:
        result["charon"] = {"skipped": charon_problem}
    return result


def _summary(runs: list[JsonObject]) -> JsonObject:
    return {"sas_per_s": median(r["sas_per_s"] for r in runs), "runs": runs}


@contextmanager
def _nothing() -> Iterator[Path | None]:
    yield None


# --- certificates --------------------------------------------------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "otwamp bench"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _credentials(directory: Path) -> None:
    """ca.crt, and NAME.crt / NAME.key (PKCS#8) for both identities, all ECDSA P-256."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("otwamp bench CA"))
        .issuer_name(_name("otwamp bench CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    (directory / "ca.crt").write_bytes(ca.public_bytes(Encoding.PEM))
    for identity in (INIT_ID, RESP_ID):
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(identity))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(identity)]), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
            )
            .sign(ca_key, hashes.SHA256())
        )
        (directory / f"{identity}.crt").write_bytes(certificate.public_bytes(Encoding.PEM))
        (directory / f"{identity}.key").write_bytes(
            key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        )


# --- ours ----------------------------------------------------------------------------------


def _our_config(directory: Path, local_id: str, port: int, peer_id: str, peer_port: int) -> Path:
    path = directory / f"{local_id}.toml"
    path.write_text(
        f"""[local]
address = "127.0.0.1"
port = {port}
id = "fqdn:{local_id}"
certificate = "{local_id}.crt"
key = "{local_id}.key"
ca = ["ca.crt"]
proposals = ["{PROPOSAL}"]
broker = "{local_id}.sock"
cookie_threshold = {HIGH_THRESHOLD}
max_half_open = {HIGH_THRESHOLD}

[[peers]]
id = "fqdn:{peer_id}"
address = "127.0.0.1"
port = {peer_port}
"""
    )
    return path


def _ike_command() -> list[str]:
    """``otwamp ike``, also before the ``ike`` group is registered in otwamp.cli.main."""
    from otwamp.cli.main import main

    if "ike" in getattr(main, "commands", {}):
        return [*otwamp_command(), "ike"]
    return [sys.executable, "-c", "from otwamp.cli.ike import ike; ike(prog_name='otwamp ike')"]


_LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+)")


@contextmanager
def _our_responder(directory: Path) -> Iterator[int]:
    """``otwamp ike`` on 127.0.0.1 and a free port; yields the port."""
    config = _our_config(directory, RESP_ID, 0, INIT_ID, 500)
    with tempfile.TemporaryFile() as log_file:
        process = subprocess.Popen(
            [*_ike_command(), "--config", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
            cwd=ROOT,
        )
        try:
            yield _await(process, log_file)
        finally:
            _stop(process)


def _await(process: "subprocess.Popen[bytes]", log_file: IO[bytes]) -> int:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        log_file.seek(0)
        text = log_file.read().decode(errors="replace")
        if match := _LISTENING.search(text):
            return int(match.group(1))
        if process.poll() is not None:
            raise BenchError(f"otwamp ike exited ({process.returncode}): {text.strip()}")
        time.sleep(0.02)
    raise BenchError("otwamp ike did not report its port in time")


async def _our_run(directory: Path, port: int, count: int, concurrency: int) -> JsonObject:
    from otwamp.ike.config import load
    from otwamp.ike.daemon import IkeDaemon

    config = load(_our_config(directory, INIT_ID, 0, RESP_ID, port))
    daemon = IkeDaemon(config.policy, ("127.0.0.1", 0))
    await daemon.start()
    peer = config.peers[0]
    assert peer.address is not None
    address, identity = peer.address, peer.identity
    try:

        async def one() -> None:
            await daemon.initiate(identity, address, timeout=30)

        return await _timed(one, count, concurrency)
    finally:
        await daemon.delete_all(timeout=5)
        daemon.close()


async def _timed(one: Callable[[], Awaitable[None]], count: int, concurrency: int) -> JsonObject:
    """Warm up, then run ``one`` ``count`` times with ``concurrency`` in flight."""
    await asyncio.gather(*(one() for _ in range(WARM_UP)))
    failures = 0
    remaining = count

    async def worker() -> None:
        nonlocal failures, remaining
        while remaining > 0:
            remaining -= 1
            try:
                await one()
            except Exception:
                failures += 1

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    done = count - failures
    return {
        "established": done,
        "failed": failures,
        "elapsed_s": round(elapsed, 3),
        "sas_per_s": round(done / elapsed, 1),
    }


# --- charon --------------------------------------------------------------------------------


def _charon_problem() -> str | None:
    if os.geteuid() != 0:
        return "needs root for its network namespace"
    if not shutil.which("ip") or not Path(CHARON).exists() or not shutil.which("swanctl"):
        return "needs ip, charon-systemd and swanctl (scripts/install-debian-deps.sh)"
    return None


_STRONGSWAN_CONF = """charon {{
    port = {port}
    port_nat_t = {nat_port}
    load_modular = no
    load = {plugins}
    install_routes = no
    install_virtual_ip = no
    reuse_ikesa = no
    threads = {threads}
    cookie_threshold = {high}
    cookie_threshold_ip = {high}
    block_threshold = {high}
    init_limit_half_open = 0
    retransmit_tries = 3
    plugins {{
        vici {{
            socket = unix://{dir}/charon.vici
        }}
    }}
    filelog {{
        main {{
            path = {dir}/charon.log
            append = no
            default = 0
        }}
    }}
    syslog {{
        daemon {{
            default = -1
        }}
        auth {{
            default = -1
        }}
    }}
}}
charon-systemd {{
    journal {{
        default = -1
    }}
}}
swanctl {{
    load = pem pkcs1 pkcs8 x509 revocation constraints pubkey openssl random
}}
"""

_SWANCTL_CONF = """connections {{
    bench {{
        version = 2
        local_addrs = 127.0.0.1
        local_port = {port}
        {role}
        proposals = {proposal}
        mobike = no
        local {{
            auth = pubkey
            certs = {local_id}.crt
            id = {local_id}
        }}
        remote {{
            auth = pubkey
            cacerts = ca.crt
            id = {remote_id}
        }}
    }}
}}
"""


class _Charon:
    """One charon-systemd in ``netns`` with its own strongswan.conf and swanctl directory."""

    def __init__(self, netns: str, directory: Path, credentials: Path, initiator: bool) -> None:
        self.netns = netns
        self.dir = directory
        swanctl = directory / "swanctl"
        for sub in ("x509", "x509ca", "private"):
            (swanctl / sub).mkdir(parents=True)
        local_id, remote_id = (INIT_ID, RESP_ID) if initiator else (RESP_ID, INIT_ID)
        port = CHARON_INIT_PORT if initiator else CHARON_RESP_PORT
        shutil.copy(credentials / "ca.crt", swanctl / "x509ca" / "ca.crt")
        shutil.copy(credentials / f"{local_id}.crt", swanctl / "x509" / f"{local_id}.crt")
        shutil.copy(credentials / f"{local_id}.key", swanctl / "private" / f"{local_id}.key")
        (directory / "strongswan.conf").write_text(
            _STRONGSWAN_CONF.format(
                port=port,
                nat_port=port + 1,
                plugins=CHARON_PLUGINS,
                dir=directory,
                high=HIGH_THRESHOLD,
                threads=CHARON_THREADS,
            )
        )
        role = (
            f"remote_addrs = 127.0.0.1\n        remote_port = {CHARON_RESP_PORT}\n"
            "        childless = force"
            if initiator
            else "remote_addrs = %any\n        childless = allow\n        unique = never"
        )
        (swanctl / "swanctl.conf").write_text(
            _SWANCTL_CONF.format(
                port=port, role=role, proposal=PROPOSAL, local_id=local_id, remote_id=remote_id
            )
        )
        self.vici = directory / "charon.vici"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "STRONGSWAN_CONF": str(self.dir / "strongswan.conf")}
        with (self.dir / "charon.out").open("wb") as out:
            self._process = subprocess.Popen(
                ["ip", "netns", "exec", self.netns, CHARON],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not self.vici.exists():
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"charon did not start: {(self.dir / 'charon.out').read_text()}")
            time.sleep(0.05)
        subprocess.run(
            [*self._in_netns("swanctl"), "--load-all", "--uri", f"unix://{self.vici}"],
            env={**env, "SWANCTL_DIR": str(self.dir / "swanctl")},
            check=True,
            capture_output=True,
            timeout=30,
        )

    def _in_netns(self, program: str) -> list[str]:
        return ["ip", "netns", "exec", self.netns, program]

    def stop(self) -> None:
        if self._process is not None:
            _stop(self._process)


@contextmanager
def _charon_pair(directory: Path) -> Iterator[Path]:
    """A charon responder and initiator in a fresh netns; yields the initiator's vici socket."""
    netns = f"otwbench{os.getpid()}"
    subprocess.run(["ip", "netns", "add", netns], check=True, capture_output=True)
    started: list[_Charon] = []
    try:
        subprocess.run(
            ["ip", "netns", "exec", netns, "ip", "link", "set", "lo", "up"],
            check=True,
            capture_output=True,
        )
        for initiator in (False, True):
            name = "charon-init" if initiator else "charon-resp"
            charon = _Charon(netns, directory / name, directory, initiator)
            started.append(charon)
            charon.start()
        yield started[-1].vici
    finally:
        for charon in reversed(started):
            charon.stop()
        subprocess.run(["ip", "netns", "del", netns], check=False, capture_output=True)


async def _charon_run(vici: Path, count: int, concurrency: int) -> JsonObject:
    connections = [await _Vici.open(vici) for _ in range(concurrency)]
    free: asyncio.Queue[_Vici] = asyncio.Queue()
    for connection in connections:
        free.put_nowait(connection)

    async def one() -> None:
        connection = await free.get()
        try:
            answer = await connection.request("initiate", {"ike": "bench", "timeout": "30000"})
            if answer.get("success") != "yes":
                raise BenchError(f"charon: {answer.get('errmsg', 'initiate failed')}")
        finally:
            free.put_nowait(connection)

    try:
        return await _timed(one, count, concurrency)
    finally:
        # every IKE SA named "bench": the next run starts with tables of the same size
        await connections[0].request("terminate", {"ike": "bench", "force": "yes", "timeout": "-1"})
        for connection in connections:
            connection.close()


class _Vici:
    """A minimal client of strongSwan's vici protocol: blocking commands, key/value answers."""

    CMD_REQUEST, CMD_RESPONSE, EVENT = 0, 1, 7
    KEY_VALUE, SECTION_START, SECTION_END, LIST_START, LIST_ITEM, LIST_END = 3, 1, 2, 4, 5, 6

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, path: Path) -> "_Vici":
        """A connection that answered a ``version`` request (vici's listen backlog is short)."""
        for _ in range(50):
            reader, writer = await asyncio.open_unix_connection(str(path))
            connection = cls(reader, writer)
            try:
                await connection.request("version", {})
                return connection
            except OSError:
                connection.close()
                await asyncio.sleep(0.05)
        raise BenchError(f"vici: no connection to {path}")

    async def request(self, command: str, arguments: dict[str, str]) -> dict[str, str]:
        body = bytes([self.CMD_REQUEST, len(command)]) + command.encode()
        for key, value in arguments.items():
            body += bytes([self.KEY_VALUE, len(key)]) + key.encode()
            body += struct.pack("!H", len(value)) + value.encode()
        self._writer.write(struct.pack("!I", len(body)) + body)
        await self._writer.drain()
        while True:
            (length,) = struct.unpack("!I", await self._reader.readexactly(4))
            packet = await self._reader.readexactly(length)
            if packet[0] == self.CMD_RESPONSE:
                return self._top_level(packet[1:])
            if packet[0] != self.EVENT:
                raise BenchError(f"vici: unexpected packet type {packet[0]}")

    @classmethod
    def _top_level(cls, message: bytes) -> dict[str, str]:
        """The top-level key/value pairs of a message (sections and lists skipped)."""
        values: dict[str, str] = {}
        depth, offset = 0, 0
        while offset < len(message):
            kind = message[offset]
            offset += 1
            if kind in (cls.SECTION_START, cls.LIST_START, cls.KEY_VALUE):
                name_len = message[offset]
                name = message[offset + 1 : offset + 1 + name_len].decode()
                offset += 1 + name_len
            if kind in (cls.KEY_VALUE, cls.LIST_ITEM):
                (value_len,) = struct.unpack_from("!H", message, offset)
                value = message[offset + 2 : offset + 2 + value_len].decode(errors="replace")
                offset += 2 + value_len
                if kind == cls.KEY_VALUE and depth == 0:
                    values[name] = value
            depth += kind in (cls.SECTION_START, cls.LIST_START)
            depth -= kind in (cls.SECTION_END, cls.LIST_END)
        return values

    def close(self) -> None:
        self._writer.close()


# --- what bench/__main__.py calls ----------------------------------------------------------

FULL = (500, 16, 3)  # IKE SAs per run, set-ups in flight, runs of each pairing
QUICK = (150, 16, 1)


def run_ike(quick: bool) -> JsonObject:
    """The ``ike`` benchmark with the full or the quick sizes."""
    count, concurrency, repeats = QUICK if quick else FULL
    log(f"IKE SA set-ups: {count} per run, {concurrency} in flight, {repeats} runs each")
    return ike_benchmark(count, concurrency, repeats)


def ike_target(ike: JsonObject) -> JsonObject | None:
    """Target: our rate at least charon's, both measured in this run (None: charon skipped)."""
    theirs = ike.get("charon", {}).get("sas_per_s")
    if theirs is None:
        return None
    ours = ike["ours"]["sas_per_s"]
    failed = sum(r["failed"] for r in ike["ours"]["runs"])
    return {
        "target": f">= charon's rate in this run ({theirs} IKE SAs/s)",
        "measured": ours,
        "ratio": ike.get("ratio"),
        "pass": bool(ours is not None and failed == 0 and ours >= theirs),
    }
