"""``otwamp stamp``: a STAMP measurement (RFC 8762, RFC 8972), and the server's STAMP options."""

import asyncio
import json
import logging
import secrets
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import click

from otwamp.cli.addresses import parse_endpoint
from otwamp.cli.dscp import parse_dscp
from otwamp.cli.errors import CliError, one_line_errors
from otwamp.cli.logs import setup_logging
from otwamp.cli.measure import (
    Protocol,
    measurement_options,
    network_reason,
    run_with_keys,
    settings_from,
)
from otwamp.drivers.control_client import PingSettings
from otwamp.drivers.stamp_reflector import STAMP_PORT, StampReflectorSettings
from otwamp.drivers.stamp_sender import StampOutcome, StampSettings, measure, resolve
from otwamp.errors import ConfigError
from otwamp.results.metrics import summarize_twamp
from otwamp.results.records import Stamp, TwampSessionRecord
from otwamp.results.report import (
    packet_json,
    packet_text,
    packets_in_order,
    render_text,
    reply_json,
    reply_text,
    stamp_json,
    stamp_text,
    to_json,
)
from otwamp.stamp.keys import StampKeys, sender_key
from otwamp.stamp.packets import AUTH_SIZE, BASE_SIZE, StampHmac
from otwamp.stamp.reflector import ReflectorMode
from otwamp.stamp.sender import StampExtras, TlvRequest, with_follow_up
from otwamp.stamp.tlv import HEADER_SIZE, SyncSource, TimestampMethod
from otwamp.wire.registry import MODE_NAMES, TwampMode
from otwamp.wire.twamp_test import MAX_UDP_PAYLOAD

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("otwamp.cli")

STAMP = Protocol(
    name="STAMP",
    port=STAMP_PORT,
    modes=(TwampMode.UNAUTHENTICATED, TwampMode.AUTHENTICATED),
    padding_help=(
        "Octets of an Extra Padding TLV (RFC 8972 §4.1) after the base packet "
        f"({BASE_SIZE} octets, {AUTH_SIZE} authenticated). Default: none. "
        "The reflected packet has the same size (RFC 8762 §4)."
    ),
    schedule_help="Only this client knows it: STAMP does not send it.",
    wait_help="Seconds to wait for late replies after the last packet.",
    control=False,  # no greeting: no PBKDF2 Count to bound (--max-count)
)
TLV_NAMES = ("location", "timestamp", "cos", "direct", "access", "follow-up")


def _stamp_options(command: F) -> F:
    """The options only ``otwamp stamp`` has."""
    options = [
        click.option(
            "--ssid",
            type=click.IntRange(1, 0xFFFF),
            help="STAMP Session Identifier (RFC 8972 §3). Default: from -u SSID@ADDR, or random.",
        ),
        click.option(
            "--tlv",
            "tlvs",
            metavar="NAMES",
            default="",
            help=(
                "RFC 8972 TLVs to send, comma-separated: location, timestamp (Timestamp "
                "Information), cos (Class of Service), direct (Direct Measurement), access "
                "(Access Report), follow-up (Follow-Up Telemetry: T3 then comes from the "
                "reflector's transmit time of each reply where it reports one)."
            ),
        ),
        click.option(
            "--cos-dscp",
            help="DSCP1 of the Class of Service TLV: the DSCP asked for replies. Default: --dscp.",
        ),
        click.option(
            "--access-report",
            metavar="ID:CODE",
            default="1:1",
            show_default=True,
            help="Access ID (1 3GPP, 2 non-3GPP) and Return Code of the Access Report TLV.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.command(name="stamp")
@measurement_options(STAMP)
@_stamp_options
@one_line_errors
def stamp_command(
    target: str, as_json: bool, raw: bool, percentiles: bool, verbose: int, **options: Any
) -> None:
    """Measure round-trip and one-way delay, loss and jitter with STAMP (RFC 8762).

    HOST[:PORT] is the STAMP Session-Reflector (UDP port 862 by default); a
    TWAMP-Light reflector (RFC 5357 Appendix I) answers too. -A authenticated
    with -u SSID@ADDR|SSID|ADDR -k FILE uses HMAC-SHA-256 (RFC 8762 §4.4).
    """
    setup_logging(verbose)
    settings = stamp_settings(target, options)
    keyed = PingSettings(settings.host, settings.port, keys=settings.key_source)
    try:
        outcome = asyncio.run(run_with_keys(keyed, lambda: _with_progress(settings)))
    except OSError as exc:
        raise CliError(network_reason(exc, target, "STAMP")) from None
    follow_ups, in_packet = 0, {}
    if settings.request.follow_up:
        reported = outcome.sender.extras.follow_ups
        in_packet = {
            r.reflector_seq: r.t3 for r in outcome.record.replies if r.reflector_seq in reported
        }
        follow_ups = with_follow_up(outcome.record, reported)
    _report(outcome, follow_ups, in_packet, as_json=as_json, raw=raw, percentiles=percentiles)
    if outcome.refused and not outcome.record.replies:
        raise CliError(f"no STAMP reflector at {target} (ICMP port unreachable)")


def stamp_settings(target: str, options: dict[str, Any]) -> StampSettings:
    """StampSettings from the command line; ConfigError for what STAMP cannot do."""
    ping = settings_from(target, STAMP, options)
    allowed = {TwampMode.UNAUTHENTICATED, TwampMode.AUTHENTICATED}
    if not set(ping.modes) <= allowed:
        raise ConfigError("STAMP has two modes: open and authenticated (RFC 8762 §4)")
    key, key_ssid = None, None
    # --key-source ike|strongswan: the key is the SA's, once the reflector's address is known
    ike = options["key_source"] != "passphrase" and TwampMode.AUTHENTICATED in ping.modes
    if not ike and TwampMode.AUTHENTICATED in ping.modes and options["identity"] is not None:
        key, key_ssid = sender_key(options["keyfile"], options["identity"])
    elif not ike and TwampMode.UNAUTHENTICATED not in ping.modes:
        raise ConfigError("authenticated STAMP needs a key: -u SSID@ADDR|SSID|ADDR -k FILE")
    ssid = options["ssid"] or key_ssid or 1 + secrets.randbelow(0xFFFF)
    return StampSettings(
        host=ping.host,
        port=ping.port,
        family=ping.family,
        count=ping.count,
        interval=ping.interval,
        schedule=ping.schedule,
        dscp=ping.dscp,
        wait=ping.wait,
        ssid=ssid,
        request=_request(options, ping.padding, ping.dscp),
        key=key,
        key_source=ping.keys if ike else None,
    )


def _request(options: dict[str, Any], padding: int | None, dscp: int) -> TlvRequest:
    """The TLVs ``--tlv`` and ``--padding`` ask for."""
    names = [name.strip().lower() for name in options["tlvs"].split(",") if name.strip()]
    unknown = set(names) - set(TLV_NAMES)
    if unknown:
        raise ConfigError(f"unknown TLV {sorted(unknown)[0]!r}: use {', '.join(TLV_NAMES)}")
    access = None
    if "access" in names:
        access_id, colon, code = str(options["access_report"]).partition(":")
        if not colon or access_id not in ("1", "2") or not code.isdigit() or int(code) > 255:
            raise ConfigError("--access-report is ID:CODE, ID 1 or 2, CODE 0-255 (RFC 8972 §4.6)")
        access = (int(access_id), int(code))
    if padding and AUTH_SIZE + HEADER_SIZE + padding > MAX_UDP_PAYLOAD:
        limit = MAX_UDP_PAYLOAD - AUTH_SIZE - HEADER_SIZE
        raise ConfigError(f"--padding: at most {limit} octets fit a UDP datagram with the TLV")
    cos = None
    if "cos" in names:
        cos = dscp if options["cos_dscp"] is None else parse_dscp(options["cos_dscp"])
    return TlvRequest(
        extra_padding=padding or None,
        location="location" in names,
        timestamp_information="timestamp" in names,
        class_of_service=cos,
        direct_measurement="direct" in names,
        access_report=access,
        follow_up="follow-up" in names,
    )


async def _ike_key(settings: StampSettings) -> tuple[StampSettings, str]:
    """The settings keyed by the SA with the reflector, and the key's source (ours, RFC 7717)."""
    if settings.key_source is None:
        return settings, "passphrase" if settings.key is not None else "none"
    _family, address = await resolve(settings)
    credentials = await settings.key_source.credentials_for(address)
    log.info("STAMP HMAC key from %s (RFC 7717 §5.1 applied to STAMP)", credentials.label)
    return replace(settings, key=StampHmac(credentials.secret)), credentials.source.value


async def _with_progress(settings: StampSettings) -> StampOutcome:
    settings, source = await _ike_key(settings)
    mode = TwampMode.AUTHENTICATED if settings.key is not None else TwampMode.UNAUTHENTICATED
    record = TwampSessionRecord(
        sid=settings.ssid.to_bytes(2, "big"), mode=MODE_NAMES[mode], key_source=source
    )
    task = asyncio.create_task(measure(settings, record))
    if not sys.stderr.isatty() or settings.count * settings.interval < 2.0:
        return await task
    while not task.done():
        await asyncio.wait({task}, timeout=0.5)
        sys.stderr.write(
            f"\r{len(record.sent)}/{settings.count} sent, {len(record.replies)} replies "
        )
        sys.stderr.flush()
    sys.stderr.write("\r\033[K")
    return task.result()


def extras_json(extras: StampExtras, follow_ups: int) -> dict[str, Any]:
    """What the TLVs said, for ``--json`` (RFC 8972 §4)."""
    info = extras.timestamp_information
    direct = extras.direct
    access = extras.access_report
    return {
        "ssid": extras.ssid,
        "replies_without_ssid": extras.ssid_zero,
        "tlv_flags": {
            "unrecognized": extras.unrecognized,
            "malformed": extras.malformed,
            "integrity": extras.integrity,
        },
        "class_of_service": {
            "forward": _tos_counts(extras.cos_forward),
            "backward": _tos_counts(extras.cos_backward),
            "refused": extras.cos_refused,
        },
        "direct_measurement": None
        if direct is None
        else {
            "sender_tx": direct.sender_tx,
            "reflector_rx": direct.reflector_rx,
            "reflector_tx": direct.reflector_tx,
        },
        "location": extras.location,
        "timestamp_information": None
        if info is None
        else {
            "sync_in": _name(SyncSource, info.sync_in),
            "timestamp_in": _name(TimestampMethod, info.timestamp_in),
            "sync_out": _name(SyncSource, info.sync_out),
            "timestamp_out": _name(TimestampMethod, info.timestamp_out),
        },
        "access_report": None
        if access is None
        else {"access_id": access.access_id, "return_code": access.return_code},
        "follow_up_t3": follow_ups,
    }


def _tos_counts(counts: Counter[tuple[int, int]]) -> list[dict[str, int]]:
    """DSCP/ECN pairs seen, with their packet counts."""
    return [
        {"dscp": dscp, "ecn": ecn, "packets": packets}
        for (dscp, ecn), packets in sorted(counts.items())
    ]


def _name(registry: type[SyncSource] | type[TimestampMethod], value: int) -> str:
    """A registry value's name, or the number when the registry has none."""
    try:
        return str(registry(value).name.lower())
    except ValueError:
        return str(value)


def extras_lines(extras: StampExtras, follow_ups: int) -> list[str]:
    """The text report's STAMP lines: what the TLVs said."""
    data = extras_json(extras, follow_ups)
    lines = []
    flags = data["tlv_flags"]
    if any(flags.values()) or extras.ssid_zero:
        lines.append(
            f"TLVs flagged by the reflector: {flags['unrecognized']} unrecognized, "
            f"{flags['malformed']} malformed, {flags['integrity']} integrity; "
            f"{extras.ssid_zero} replies without SSID"
        )
    cos = data["class_of_service"]
    for direction in ("forward", "backward"):
        if cos[direction]:
            seen = ", ".join(
                f"DSCP {item['dscp']} ECN {item['ecn']} x{item['packets']}"
                for item in cos[direction]
            )
            lines.append(f"{direction} class of service: {seen}")
    if cos["refused"]:
        lines.append(f"reflector refused the DSCP asked {cos['refused']} times (RP=1)")
    if data["direct_measurement"]:
        counters = data["direct_measurement"]
        lines.append(
            f"direct measurement: sender tx {counters['sender_tx']}, reflector rx "
            f"{counters['reflector_rx']}, reflector tx {counters['reflector_tx']}"
        )
    if data["location"]:
        lines.append(
            "location: " + ", ".join(f"{key} {value}" for key, value in data["location"].items())
        )
    if data["timestamp_information"]:
        info = data["timestamp_information"]
        lines.append(
            f"reflector timestamps: in {info['timestamp_in']} ({info['sync_in']}), "
            f"out {info['timestamp_out']} ({info['sync_out']})"
        )
    if data["access_report"]:
        access = data["access_report"]
        lines.append(
            f"access report echoed: ID {access['access_id']}, return code {access['return_code']}"
        )
    if follow_ups:
        lines.append(f"T3 from Follow-Up Telemetry for {follow_ups} replies")
    return lines


def stamp_raw_lines(
    record: TwampSessionRecord, in_packet: dict[int, Stamp], json_lines: bool
) -> Iterator[str]:
    """One line per reply or lost packet as ``otwamp ping --raw``, with T3's source.

    ``in_packet`` maps a reflector seq whose T3 is now the Follow-Up Timestamp
    (RFC 8972 §4.7) to the T3 the reply carried. JSON: ``t3`` says its
    ``source`` ("follow-up" or "packet"), and a follow-up one has the carried
    T3 as ``t3_packet``; text: ``packet-T3 ...`` follows such a reply's fields.
    """
    for sent, replies in packets_in_order(record):
        if not replies:
            lost = packet_json(sent, replies) if json_lines else packet_text(sent, replies)
            yield from (json.dumps(line) if json_lines else str(line) for line in lost)
            continue
        for index, reply in enumerate(replies):
            carried = in_packet.get(reply.reflector_seq)
            if json_lines:
                line = reply_json(reply, index > 0, sent)
                line["t3"]["source"] = "packet" if carried is None else "follow-up"
                if carried is not None:
                    line["t3_packet"] = stamp_json(carried)
                yield json.dumps(line)
                continue
            text = reply_text(reply, False, sent)
            if carried is not None:
                text += f" packet-T3 {stamp_text(carried)}"
            yield text + (" DUP" if index > 0 else "")


def _report(
    outcome: StampOutcome,
    follow_ups: int,
    in_packet: dict[int, Stamp],
    *,
    as_json: bool,
    raw: bool,
    percentiles: bool,
) -> None:
    if raw:
        for line in stamp_raw_lines(outcome.record, in_packet, json_lines=as_json):
            click.echo(line)
        return
    summary = replace(summarize_twamp(outcome.record), protocol="stamp")
    extras = outcome.sender.extras
    if as_json:
        click.echo(
            json.dumps(to_json(summary) | {"stamp": extras_json(extras, follow_ups)}, indent=2)
        )
        return
    text = render_text(summary, percentiles).splitlines()
    text[0] = f"--- STAMP statistics, SSID {extras.ssid} ---"
    click.echo("\n".join(text + extras_lines(extras, follow_ups)))


# --- otwamp server's STAMP options ---------------------------------------------

SERVER_OPTIONS = [
    click.option(
        "--stamp-listen",
        "stamp_listen",
        multiple=True,
        metavar="ADDR[:PORT]",
        help=(
            f"Address to reflect STAMP and TWAMP-Light test packets on (UDP, default port "
            f"{STAMP_PORT}, RFC 8762 §4.1), repeatable; 'off' for none. Default: off."
        ),
    ),
    click.option(
        "--stamp-mode",
        type=click.Choice([mode.value for mode in ReflectorMode]),
        help="STAMP reflector mode (RFC 8762 §4): stateful (default) or stateless.",
    ),
    click.option(
        "--stamp-keyfile",
        type=click.Path(dir_okay=False, readable=False, path_type=Path),
        help="HMAC keys of authenticated STAMP by SSID@ADDR, SSID or ADDR (pfs format).",
    ),
    click.option(
        "--stamp-key-source",
        type=click.Choice(["file", "ike"]),
        help=(
            "Where the reflector's HMAC keys come from: --stamp-keyfile (file, the default) or "
            "the newest IKEv2 SA with the packet's source, through --ike-config, --ike-socket "
            "or --strongswan-ha (ike: RFC 7717 §5.1's key applied to STAMP, our pairing)."
        ),
    ),
]


def stamp_server_options(command: F) -> F:
    """The STAMP reflector options of ``otwamp server``."""
    for option in reversed(SERVER_OPTIONS):
        command = option(command)
    return command


STAMP_CONFIG_KEYS = ("stamp_listen", "stamp_mode", "stamp_keyfile", "stamp_key_source")


def stamp_reflector_settings(merged: dict[str, Any]) -> StampReflectorSettings:
    """The STAMP reflector's settings from a config table merged with the flags."""
    value = merged.get("stamp_listen", "off")
    items = [value] if isinstance(value, str) else list(value)
    endpoints: tuple[tuple[str, int], ...] = ()
    if [str(item) for item in items] != ["off"]:
        endpoints = tuple(parse_endpoint(str(item), STAMP_PORT) for item in items)
    try:
        mode = ReflectorMode(str(merged.get("stamp_mode", ReflectorMode.STATEFUL.value)))
    except ValueError:
        raise ConfigError("stamp_mode must be 'stateful' or 'stateless'") from None
    keyfile = merged.get("stamp_keyfile")
    source = str(merged.get("stamp_key_source", "file"))
    if source not in ("file", "ike"):
        raise ConfigError("stamp_key_source must be 'file' or 'ike'")
    if source == "ike":
        if keyfile is not None:
            raise ConfigError("STAMP keys come from a key file or from IKEv2 SAs, not both")
        return StampReflectorSettings(endpoints, mode, ike_keys=True)  # bound in cli.serving
    keys = None if keyfile is None else StampKeys.load(Path(str(keyfile)))
    return StampReflectorSettings(endpoints, mode, keys)


def stamp_flags(**flags: Any) -> dict[str, Any]:
    """The STAMP flags given on the command line (to override the config file's keys)."""
    return {key: value for key, value in flags.items() if value not in (None, ())}
