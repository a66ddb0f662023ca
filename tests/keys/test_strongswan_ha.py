"""strongSwan HA messages: the codec, the SA table and SK_d, against datagrams charon sent.

The fixtures in data/ were recorded from charon 5.9.8 (tests/keys/strongswan_ha_support.py):
an SA, rekeyed by the initiator and then by the responder, for four PRFs, seen by both
charons' HA plugins, with the SK_d each charon logged at ike = 4. test_strongswan_ha_live.py
records the same against a running charon.
"""

import asyncio
import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otwamp.drivers.strongswan_ha import HaEndpoints, HaLookup
from otwamp.errors import KeySourceError, ProtocolError
from otwamp.ike.crypto.keymat import ippm_key
from otwamp.keys.aes_prf import AesPrf, xcbc_mac
from otwamp.keys.ikev2 import IkeServerKeys
from otwamp.keys.source import KeySourceKind
from otwamp.keys.strongswan_ha import (
    _KINDS,
    RESYNC_ALL,
    Attribute,
    AttributeType,
    Change,
    HaMessage,
    HaMessageError,
    HaSaTable,
    Host,
    Identity,
    IkeSaId,
    MessageType,
    TrafficSelector,
    Value,
    derive_sk_d,
    prf_for,
)

DATA = Path(__file__).with_name("data")
FIXTURES = sorted(DATA.glob("strongswan_ha_*.json"))
PRF_IDS = {"hmac-sha256": 5, "aes-xcbc": 4, "hmac-sha384": 6, "aes-cmac": 8}


def replay(datagrams: list[bytes], table: HaSaTable | None = None) -> list[tuple[Change, str]]:
    table = HaSaTable() if table is None else table
    changes = [table.receive(HaMessage.decode(d)) for d in datagrams]
    return [change for change in changes if change is not None]


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
@pytest.mark.parametrize("role", ["responder", "initiator"])
def test_recorded_sk_d_and_ippm_key_equal_charons(path, role):
    recorded = json.loads(path.read_text())
    datagrams = [bytes.fromhex(d) for d in recorded[role]["datagrams"]]
    adds = [m for m in map(HaMessage.decode, datagrams) if m.message_type is MessageType.IKE_ADD]
    assert [derive_sk_d(m).hex() for m in adds] == recorded[role]["sk_d"]
    assert len(adds) == 3  # the initial SA, a rekey by the initiator, one by the responder
    assert [m.get(AttributeType.OLD_SKD, bytes) is not None for m in adds] == [False, True, True]
    prf_id = PRF_IDS[path.stem.removeprefix("strongswan_ha_")]
    assert {m.require(AttributeType.ALG_PRF, int) for m in adds} == {prf_id}
    table = HaSaTable()
    keys = []
    for datagram in datagrams:
        change = table.receive(HaMessage.decode(datagram))
        if change is not None and change[0] is Change.ESTABLISHED:
            spi_i, spi_r = (bytes.fromhex(part.split("=")[1]) for part in change[1].split())
            established = table.established(spi_i, spi_r)
            assert established is not None and established.peer == "127.0.0.1"
            keys.append(established.key)
    prf = prf_for(prf_id, "ALG_PRF")
    assert keys == [ippm_key(bytes.fromhex(sk_d), prf) for sk_d in recorded[role]["sk_d"]]
    assert len(table) == 0  # old SAs went with their rekeys, the last when charon stopped


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_recorded_datagrams_round_trip(path):
    recorded = json.loads(path.read_text())
    for datagram in map(bytes.fromhex, recorded["responder"]["datagrams"]):
        assert HaMessage.decode(datagram).encode() == datagram


def test_sa_counts_only_once_updated_and_goes_with_delete():
    recorded = json.loads((DATA / "strongswan_ha_hmac-sha256.json").read_text())
    add = bytes.fromhex(recorded["responder"]["datagrams"][0])
    table = HaSaTable()
    assert replay([add], table)[0][0] is Change.ADDED
    sa_id = HaMessage.decode(add).require(AttributeType.IKE_ID, IkeSaId)
    assert table.established(sa_id.spi_i, sa_id.spi_r) is None  # not authenticated yet
    delete = HaMessage(MessageType.IKE_DELETE, (HaMessage.decode(add).attributes[1],))
    assert delete.attributes[0].kind is AttributeType.IKE_ID
    assert replay([delete.encode()], table) == [(Change.DELETED, f"SPIi={sa_id.spi_i.hex()} "
                                                 f"SPIr={sa_id.spi_r.hex()}")]  # fmt: skip
    assert len(table) == 0


def test_server_lookup_finds_established_sa_and_checks_peer():
    asyncio.run(_lookups())


async def _lookups() -> None:
    recorded = json.loads((DATA / "strongswan_ha_hmac-sha384.json").read_text())
    lookup = HaLookup(HaEndpoints("127.0.0.2"))
    replay([bytes.fromhex(d) for d in recorded["responder"]["datagrams"][:3]], lookup.table)
    (sa,) = (s for s in lookup.table._sas.values())
    keys = IkeServerKeys(lookup, name=KeySourceKind.STRONGSWAN)
    credentials = await keys.server_secret(sa.spi_i + sa.spi_r + bytes(64), "127.0.0.1")
    assert credentials is not None and credentials.source is KeySourceKind.STRONGSWAN
    assert credentials.secret == sa.key and sa.key.hex() not in repr(sa)
    assert await keys.server_secret(bytes(80), "127.0.0.1") is None  # unknown SPIs: Accept 6
    with pytest.raises(KeySourceError, match=r"belongs to 127\.0\.0\.1"):
        await keys.server_secret(sa.spi_i + sa.spi_r + bytes(64), "192.0.2.9")
    found = await lookup.for_peer("127.0.0.1", initiate=True)
    assert found is not None and found.sa.key == sa.key
    lookup.wait = 0.05
    assert await lookup.for_peer("192.0.2.9", initiate=True) is None


def test_resync_is_the_documented_octets():
    assert RESYNC_ALL.encode() == bytes.fromhex("030b220001")


def test_secrets_never_in_repr():
    secret = bytes(range(32))
    message = HaMessage(MessageType.IKE_ADD, ((_attr(AttributeType.SECRET, secret)),))
    assert secret.hex() not in repr(message) and repr(secret) not in repr(message)
    assert "<32 octets>" in repr(message)


@pytest.mark.parametrize(
    "octets, field",
    [
        (b"", "length"),
        (b"\x02\x01", "version"),
        (b"\x03\x0d", "type"),
        (b"\x03\x01\x2a", "attribute"),
        (b"\x03\x01\x01" + bytes(10), "IKE_ID"),
        (b"\x03\x01\x07\x01\xf4\x05\x7f\x00\x00\x01", "REMOTE_ADDR"),  # family 5
        (b"\x03\x01\x08abc", "CONFIG_NAME"),  # no NUL
        (b"\x03\x01\x11\x00\x20" + bytes(31), "SECRET"),
        (b"\x03\x01\x1f\x09" + bytes(7), "LOCAL_TS"),
    ],
)
def test_malformed_datagrams_raise_ha_message_error(octets, field):
    with pytest.raises(HaMessageError) as caught:
        HaMessage.decode(octets)
    assert caught.value.field == field and "ha_message.c" in str(caught.value)


def test_ike_add_without_secret_or_with_unknown_prf_is_a_protocol_error():
    recorded = json.loads((DATA / "strongswan_ha_hmac-sha256.json").read_text())
    add = HaMessage.decode(bytes.fromhex(recorded["responder"]["datagrams"][0]))
    without = HaMessage(add.message_type, tuple(a for a in add.attributes
                                                if a.kind is not AttributeType.SECRET))  # fmt: skip
    with pytest.raises(HaMessageError, match="lacks SECRET"):
        HaSaTable().receive(without)
    odd_prf = HaMessage(add.message_type, tuple(
        _attr(a.kind, 99) if a.kind is AttributeType.ALG_PRF else a for a in add.attributes
    ))  # fmt: skip
    with pytest.raises(HaMessageError, match="unsupported PRF 99"):
        HaSaTable().receive(odd_prf)


def test_aes_prfs_against_rfc_vectors():
    key = bytes(range(16))
    message = bytes(range(20))
    assert xcbc_mac(key, b"").hex() == "75f0251d528ac01c4573dfd584d79f29"  # RFC 3566 §4.6
    assert xcbc_mac(key, message).hex() == "47f51b4564966215b8985c63055ed308"
    xcbc, cmac = AesPrf(4), AesPrf(8)
    assert xcbc(bytes(range(10)), message).hex() == "0fa087af7d866e7653434e602fdde835"  # 4434
    assert xcbc(key + b"\xed\xcb", message).hex() == "8cd3c93ae598a9803006ffb67c40e9e4"
    assert cmac(bytes(range(10)), message).hex() == "290d9e112edb09ee141fcf64c0b72f3d"  # 4615
    assert cmac(key + b"\xed\xcb", message).hex() == "84a348a4a45d235babfffc0d2b4da09a"
    assert cmac(key, message).hex() == "980ae87b5f4c9c5214f5b6a8455e4c2d"


def _attr(kind: AttributeType, value: Value) -> Attribute:
    return Attribute(kind, value)


_u8, _u16, _u32 = (st.integers(0, 2**n - 1) for n in (8, 16, 32))
_ipv4 = st.ip_addresses(v=4).map(str)
_ipv6 = st.ip_addresses(v=6).map(str)
_VALUES = {
    "sa_id": st.builds(
        IkeSaId,
        _u8,
        st.binary(min_size=8, max_size=8),
        st.binary(min_size=8, max_size=8),
        st.booleans(),
    ),
    "identity": st.builds(Identity, _u8, st.binary(max_size=255)),
    "host": st.builds(Host, _ipv4 | _ipv6, _u16),
    "string": st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0")),
    "u8": _u8,
    "u16": _u16,
    "u32": _u32,
    "chunk": st.binary(max_size=300),
    "ts": st.one_of(
        st.builds(TrafficSelector, st.just(7), _u8, _u16, _u16, st.booleans(), _ipv4, _ipv4),
        st.builds(TrafficSelector, st.just(8), _u8, _u16, _u16, st.booleans(), _ipv6, _ipv6),
    ),
}


@st.composite
def attributes(draw: st.DrawFn) -> Attribute:
    kind = draw(st.sampled_from(list(AttributeType)))
    return _attr(kind, draw(_VALUES[_KINDS[kind].name.lower()]))


@given(st.sampled_from(list(MessageType)), st.lists(attributes(), max_size=12))
def test_round_trip(message_type, attrs):
    message = HaMessage(message_type, tuple(attrs))
    assert HaMessage.decode(message.encode()) == message


@given(st.binary(max_size=200))
def test_random_octets_raise_only_protocol_errors(octets):
    with contextlib.suppress(ProtocolError):
        HaSaTable().receive(HaMessage.decode(octets))


@given(st.binary(min_size=1, max_size=60))
def test_random_attribute_octets_raise_only_protocol_errors(tail):
    with contextlib.suppress(ProtocolError):
        HaSaTable().receive(HaMessage.decode(b"\x03\x01" + tail))
