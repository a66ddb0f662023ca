"""Hypothesis strategies for IKEv2 payloads and messages."""

from hypothesis import strategies as st

from otwamp.ike.registry import CertEncoding, HeaderFlag, IdType, NotifyType, PayloadType
from otwamp.ike.wire.identity import Identity, IdInitiator, IdResponder
from otwamp.ike.wire.message import Message
from otwamp.ike.wire.payloads import (
    Authentication,
    Certificate,
    CertificateRequest,
    Delete,
    Encrypted,
    KeyExchange,
    Nonce,
    Notify,
    OpaquePayload,
)
from otwamp.ike.wire.sa import Attribute, Proposal, SecurityAssociation, Transform

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
small = st.binary(max_size=64)

attributes = st.one_of(
    st.builds(Attribute, st.integers(0, 0x7FFF), st.binary(min_size=2, max_size=2)),
    st.builds(Attribute, st.integers(0, 0x7FFF), small, st.just(False)),
)
transforms = st.builds(Transform, u8, u16, st.lists(attributes, max_size=3).map(tuple))
proposals = st.builds(
    Proposal, u8, u8, st.lists(transforms, max_size=5).map(tuple), st.binary(max_size=8)
)
security_associations = st.builds(
    SecurityAssociation, st.lists(proposals, min_size=1, max_size=3).map(tuple)
)

printable = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1)
identities = st.one_of(
    st.builds(Identity, st.just(IdType.IPV4_ADDR), st.binary(min_size=4, max_size=4)),
    st.builds(Identity, st.just(IdType.IPV6_ADDR), st.binary(min_size=16, max_size=16)),
    printable.map(Identity.fqdn),
    printable.map(Identity.rfc822),
    st.builds(
        Identity, st.sampled_from([IdType.DER_ASN1_DN, IdType.KEY_ID]), st.binary(min_size=1)
    ),
)

_RULED = {
    NotifyType.COOKIE,
    NotifyType.INVALID_KE_PAYLOAD,
    NotifyType.NAT_DETECTION_SOURCE_IP,
    NotifyType.NAT_DETECTION_DESTINATION_IP,
    NotifyType.SIGNATURE_HASH_ALGORITHMS,
}
notifies = st.one_of(
    st.builds(Notify, u16.filter(lambda t: t not in _RULED), small, u8, st.binary(max_size=8)),
    st.builds(Notify, st.just(NotifyType.COOKIE), st.binary(min_size=1, max_size=64)),
    u16.map(Notify.invalid_ke),
    st.lists(u16, max_size=6).map(lambda a: Notify.hash_algorithms(tuple(a))),
    st.builds(
        Notify,
        st.sampled_from(
            [NotifyType.NAT_DETECTION_SOURCE_IP, NotifyType.NAT_DETECTION_DESTINATION_IP]
        ),
        st.binary(min_size=20, max_size=20),
    ),
)
deletes = st.one_of(
    st.just(Delete()),
    st.builds(
        Delete, st.just(3), st.lists(st.binary(min_size=4, max_size=4), min_size=1).map(tuple)
    ),
)
_OPAQUE_KNOWN = [PayloadType.VENDOR_ID, PayloadType.TSI, PayloadType.TSR, PayloadType.CP]
opaques = st.one_of(
    st.builds(OpaquePayload, st.sampled_from(_OPAQUE_KNOWN), small, st.booleans()),
    st.builds(OpaquePayload, st.integers(54, 255), small),
)
payloads = st.one_of(
    security_associations,
    st.builds(KeyExchange, u16, small),
    st.builds(Nonce, st.binary(min_size=16, max_size=256)),
    identities.map(IdInitiator),
    identities.map(IdResponder),
    st.builds(Certificate, u8, small),
    st.builds(
        CertificateRequest,
        st.just(CertEncoding.X509_SIGNATURE),
        st.lists(st.binary(min_size=20, max_size=20), max_size=3).map(b"".join),
    ),
    st.builds(Authentication, u8, small),
    notifies,
    deletes,
    opaques,
)
encrypted = st.builds(Encrypted, st.sampled_from(list(PayloadType)), small)


@st.composite
def messages(draw: st.DrawFn) -> Message:
    """Messages of known payloads, optionally ending with an SK payload."""
    body = draw(st.lists(payloads, max_size=6))
    if draw(st.booleans()):
        body.append(draw(encrypted))
    return Message(
        draw(st.binary(min_size=8, max_size=8)),
        draw(st.binary(min_size=8, max_size=8)),
        draw(u8),
        HeaderFlag(draw(u8)),
        draw(st.integers(0, 0xFFFFFFFF)),
        tuple(body),
        draw(st.integers(0, 15)),
    )
