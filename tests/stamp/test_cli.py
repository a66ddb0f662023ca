"""``otwamp stamp`` against ``otwamp server --stamp-listen``, real processes over loopback.

Also the TWAMP-Light interoperability of RFC 8762 §4.6 both ways, each peer a
minimal one written here from RFC 5357 Appendix I (§4.1.2 and §4.2.1 formats).
"""

import json
import os
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.processes import endpoint, family, run_cli
from tests.stamp.stamp_support import ALL_TLVS, Reflector, free_udp_port, running_reflector


def secret() -> str:
    """A pass-phrase file entry's hex: 64 random hex characters as the pass-phrase."""
    return os.urandom(32).hex().encode().hex()


def stamp(*args: str, timeout: float = 30.0) -> dict[str, object]:
    result = run_cli("stamp", *args, "--json", timeout=timeout)
    assert result.returncode == 0, result.stderr
    report: dict[str, object] = json.loads(result.stdout)
    return report


@pytest.fixture(params=["127.0.0.1", "::1"])
def reflector(request: pytest.FixtureRequest) -> Iterator[Reflector]:
    with running_reflector(request.param) as running:
        yield running


def test_every_tlv_over_both_families(reflector: Reflector) -> None:
    report = stamp(
        reflector.target,
        "-c",
        "20",
        "-i",
        "0.005",
        "--tlv",
        ALL_TLVS,
        "--padding",
        "40",
        "--dscp",
        "AF41",
        "-a",
    )
    packets = report["packets"]
    assert isinstance(packets, dict)
    assert packets["sent"] == packets["received"] == 20 and packets["lost"] == 0
    assert report["protocol"] == "stamp" and report["mode"] == "open"
    extras = report["stamp"]
    assert isinstance(extras, dict)
    assert extras["tlv_flags"] == {"unrecognized": 0, "malformed": 0, "integrity": 0}
    assert extras["direct_measurement"] == {"sender_tx": 20, "reflector_rx": 20, "reflector_tx": 20}
    cos = extras["class_of_service"]
    assert cos["forward"] == [{"dscp": 34, "ecn": 0, "packets": 20}]  # type: ignore[index]
    assert cos["backward"] == [{"dscp": 34, "ecn": 0, "packets": 20}]  # type: ignore[index]
    location = extras["location"]
    assert isinstance(location, dict)
    version = "ipv6" if ":" in reflector.host else "ipv4"
    assert location[f"destination_{version}"] == reflector.host
    assert location["destination_port"] == reflector.port
    assert extras["follow_up_t3"] == 19  # every reply but the first reports its predecessor
    assert extras["access_report"] == {"access_id": 1, "return_code": 1}


def test_raw_lines_and_text(reflector: Reflector) -> None:
    raw = run_cli("stamp", reflector.target, "-c", "5", "-i", "0.01", "--raw", "--json")
    lines = [json.loads(line) for line in raw.stdout.splitlines()]
    assert [line["seq"] for line in lines] == [0, 1, 2, 3, 4] and not any(
        line["lost"] for line in lines
    )
    text = run_cli("stamp", reflector.target, "-c", "5", "-i", "0.01", "--ssid", "4242")
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith("--- STAMP statistics, SSID 4242 ---")
    assert "5 sent, 5 received, 0 lost" in text.stdout


def test_stateless_reflector_copies_sequence_numbers() -> None:
    with running_reflector(extra=["--stamp-mode", "stateless"]) as running:
        raw = run_cli("stamp", running.target, "-c", "5", "-i", "0.01", "--raw", "--json")
    lines = [json.loads(line) for line in raw.stdout.splitlines()]
    assert [line["reflector_seq"] for line in lines] == [line["seq"] for line in lines]


def test_authenticated(tmp_path: Path) -> None:
    keyfile = tmp_path / "stamp.pfs"
    keyfile.write_text(f"77@127.0.0.1\t{secret()}\n")
    keyfile.chmod(0o600)
    with running_reflector(extra=["--stamp-keyfile", str(keyfile)]) as running:
        report = stamp(
            running.target,
            "-c",
            "10",
            "-i",
            "0.005",
            "-A",
            "authenticated",
            "-u",
            "77@127.0.0.1",
            "-k",
            str(keyfile),
            "--tlv",
            "direct,cos",
        )
        assert report["mode"] == "authenticated"
        assert report["packets"]["received"] == 10  # type: ignore[index]
        assert report["stamp"]["ssid"] == 77  # type: ignore[index]
        assert report["stamp"]["tlv_flags"]["integrity"] == 0  # type: ignore[index]
        # the same SSID unauthenticated: refused by the reflector, which wants an HMAC
        plain = stamp(running.target, "-c", "3", "-i", "0.005", "--ssid", "77", "--wait", "0.3")
        assert plain["packets"]["received"] == 0  # type: ignore[index]
        wrong = tmp_path / "wrong.pfs"
        wrong.write_text(f"77@127.0.0.1\t{secret()}\n")
        forged = stamp(
            running.target,
            "-c",
            "3",
            "-i",
            "0.005",
            "-A",
            "authenticated",
            "-u",
            "77@127.0.0.1",
            "-k",
            str(wrong),
            "--wait",
            "0.3",
        )
        assert forged["packets"]["received"] == 0  # type: ignore[index]
        assert "HMAC does not match" in running.log()


def test_garbage_does_not_stop_the_reflector() -> None:
    with running_reflector() as running:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for size in (0, 1, 13, 14, 44, 45, 200) * 50:
                sock.sendto(os.urandom(size), (running.host, running.port))
        report = stamp(running.target, "-c", "10", "-i", "0.005")
        assert report["packets"]["received"] == 10  # type: ignore[index]
        assert running.process.poll() is None
        assert "Traceback" not in running.log()


def test_twamp_light_sender_against_our_reflector(reflector: Reflector) -> None:
    """An RFC 5357 §4.1.2 unauthenticated sender: 14 octets plus padding (Appendix I)."""
    with socket.socket(family(reflector.host), socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.connect((reflector.host, reflector.port))
        for seq, padding in ((0, 0), (1, 27), (2, 200)):
            sent_ts = (3_900_000_000 << 32) | seq
            sock.send(struct.pack("!IQH", seq, sent_ts, 0x0001) + bytes(padding))
            reply = sock.recv(4096)
            assert len(reply) == max(44, 14 + padding)  # RFC 8762 §4.6
            # RFC 5357 §4.2.1: Seq, Timestamp, Error, MBZ, Receive Timestamp, Sender Seq,
            # Sender Timestamp, Sender Error, MBZ, Sender TTL.
            fields = struct.unpack_from("!IQH2xQIQH2xB", reply)
            assert fields[4:7] == (seq, sent_ts, 0x0001)
            assert fields[7] in (64, 255)  # the loopback TTL (ours is 255)
            assert fields[0] == seq  # stateful: this sender's own session counts from 0
            assert fields[2] & 0xFF  # a valid Error Estimate


def _twamp_light_reflector(sock: socket.socket, stop: threading.Event) -> None:
    """RFC 5357 §4.2.1 unauthenticated: its own numbering, MBZ where STAMP has the SSID."""
    seq = 0
    sock.settimeout(0.05)
    while not stop.is_set():
        try:
            data, source = sock.recvfrom(4096)
        except TimeoutError:
            continue
        t2 = (int(time.time()) + 2_208_988_800) << 32
        s_seq, s_ts, s_err = struct.unpack_from("!IQH", data)
        reply = struct.pack("!IQH2xQIQH2xB", seq, t2, 0x0001, t2, s_seq, s_ts, s_err, 255)
        sock.sendto(reply + data[14 + 27 :], source)  # padding less 27 octets (§4.2.1)
        seq += 1


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_our_sender_against_a_twamp_light_reflector(host: str) -> None:
    port = free_udp_port(host)
    with socket.socket(family(host), socket.SOCK_DGRAM) as sock:
        sock.bind((host, port))
        stop = threading.Event()
        thread = threading.Thread(target=_twamp_light_reflector, args=(sock, stop))
        thread.start()
        try:
            report = stamp(endpoint(host, port), "-c", "10", "-i", "0.005")
        finally:
            stop.set()
            thread.join()
    assert report["packets"]["received"] == 10  # type: ignore[index]
    assert report["stamp"]["replies_without_ssid"] == 10  # type: ignore[index]


def test_one_line_errors() -> None:
    port = free_udp_port("127.0.0.1")
    nobody = run_cli("stamp", f"127.0.0.1:{port}", "-c", "2", "-i", "0.01", "--wait", "0.3")
    assert nobody.returncode == 1
    assert nobody.stderr.strip().splitlines()[-1] == (
        f"otwamp: no STAMP reflector at 127.0.0.1:{port} (ICMP port unreachable)"
    )
    for args, reason in (
        (["-A", "encrypted"], "two modes"),
        (["--tlv", "bogus"], "unknown TLV"),
        (["-A", "authenticated"], "needs a key"),
        (["--tlv", "access", "--access-report", "3:1"], "--access-report"),
        (["--padding", "65490"], "--padding"),
    ):
        result = run_cli("stamp", "127.0.0.1", *args)
        assert result.returncode == 1 and result.stderr.startswith("otwamp: "), result.stderr
        assert reason in result.stderr and "Traceback" not in result.stderr


def test_server_config_file(tmp_path: Path) -> None:
    port = free_udp_port("127.0.0.1")
    config = tmp_path / "server.toml"
    config.write_text(
        f'[server]\nlisten = "off"\nowamp_listen = "off"\n'
        f'stamp_listen = ["127.0.0.1:{port}"]\nstamp_mode = "stateless"\n'
    )
    with running_reflector(extra=["--config", str(config)], port=port) as running:
        assert "STAMP reflector (stateless) on UDP 127.0.0.1 port" in running.log()
        report = stamp(f"127.0.0.1:{port}", "-c", "3", "-i", "0.01")
        assert report["packets"]["received"] == 3  # type: ignore[index]
    bad = run_cli(
        "server", "--listen", "off", "--owamp-listen", "off", "--stamp-listen", "127.0.0.1:99999"
    )
    assert bad.returncode == 1 and bad.stderr.startswith("otwamp: ")
