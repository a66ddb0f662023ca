"""IANA IKEv2 registries used by otwamp (RFC 7296 §3 and the RFCs cited per class)."""

from enum import IntEnum, IntFlag


def lookup(registry: type[IntEnum], value: int) -> int:
    """Return the registry member for ``value``, or the plain int when unassigned."""
    try:
        return registry(value)
    except ValueError:
        return value


class ExchangeType(IntEnum):
    """Exchange types (RFC 7296 §3.1)."""

    IKE_SA_INIT = 34
    IKE_AUTH = 35
    CREATE_CHILD_SA = 36
    INFORMATIONAL = 37


class HeaderFlag(IntFlag):
    """IKE header flags (RFC 7296 §3.1)."""

    INITIATOR = 0x08
    VERSION = 0x10
    RESPONSE = 0x20


class PayloadType(IntEnum):
    """Payload types (RFC 7296 §3.2; SKF from RFC 7383 §2.5)."""

    NONE = 0
    SA = 33
    KE = 34
    IDI = 35
    IDR = 36
    CERT = 37
    CERTREQ = 38
    AUTH = 39
    NONCE = 40
    NOTIFY = 41
    DELETE = 42
    VENDOR_ID = 43
    TSI = 44
    TSR = 45
    SK = 46
    CP = 47
    EAP = 48
    SKF = 53


class ProtocolId(IntEnum):
    """Security protocol identifiers (RFC 7296 §3.3.1)."""

    IKE = 1
    AH = 2
    ESP = 3


class TransformType(IntEnum):
    """Transform types (RFC 7296 §3.3.2)."""

    ENCR = 1
    PRF = 2
    INTEG = 3
    DH = 4
    ESN = 5


class EncrId(IntEnum):
    """Encryption transform IDs (RFC 7296 §3.3.2; AES-GCM from RFC 5282 §7)."""

    AES_CBC = 12
    AES_GCM_16 = 20


class PrfId(IntEnum):
    """Pseudorandom function transform IDs (RFC 7296 §3.3.2, RFC 4868 §7)."""

    HMAC_SHA1 = 2
    HMAC_SHA2_256 = 5
    HMAC_SHA2_384 = 6
    HMAC_SHA2_512 = 7


class IntegId(IntEnum):
    """Integrity transform IDs (RFC 7296 §3.3.2, RFC 4868 §7)."""

    NONE = 0
    HMAC_SHA1_96 = 2
    HMAC_SHA2_256_128 = 12
    HMAC_SHA2_384_192 = 13
    HMAC_SHA2_512_256 = 14


class DhGroup(IntEnum):
    """Diffie-Hellman group transform IDs (RFC 7296 §3.3.2, RFC 5903 §6, RFC 8031 §4)."""

    NONE = 0
    MODP_2048 = 14
    MODP_3072 = 15
    ECP_256 = 19
    ECP_384 = 20
    ECP_521 = 21
    CURVE25519 = 31
    CURVE448 = 32


class AttributeType(IntEnum):
    """Transform attribute types (RFC 7296 §3.3.5)."""

    KEY_LENGTH = 14


class IdType(IntEnum):
    """Identification types (RFC 7296 §3.5)."""

    IPV4_ADDR = 1
    FQDN = 2
    RFC822_ADDR = 3
    IPV6_ADDR = 5
    DER_ASN1_DN = 9
    DER_ASN1_GN = 10
    KEY_ID = 11


class CertEncoding(IntEnum):
    """Certificate encodings (RFC 7296 §3.6)."""

    X509_SIGNATURE = 4
    RAW_RSA_KEY = 11
    HASH_URL_X509_CERT = 12
    HASH_URL_X509_BUNDLE = 13


class AuthMethod(IntEnum):
    """Authentication methods (RFC 7296 §3.8, RFC 4754 §7, RFC 7427 §3)."""

    RSA_SIGNATURE = 1
    SHARED_KEY_MIC = 2
    DSS_SIGNATURE = 3
    ECDSA_SHA256_P256 = 9
    ECDSA_SHA384_P384 = 10
    ECDSA_SHA512_P521 = 11
    DIGITAL_SIGNATURE = 14


class HashAlgorithm(IntEnum):
    """Hash algorithm identifiers for SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4)."""

    SHA1 = 1
    SHA2_256 = 2
    SHA2_384 = 3
    SHA2_512 = 4
    IDENTITY = 5


class NotifyType(IntEnum):
    """Notify message types (RFC 7296 §3.10.1 and the RFCs named per value).

    Values below 16384 are errors, the rest are status types (RFC 7296 §3.10.1).
    """

    UNSUPPORTED_CRITICAL_PAYLOAD = 1
    INVALID_IKE_SPI = 4
    INVALID_MAJOR_VERSION = 5
    INVALID_SYNTAX = 7
    INVALID_MESSAGE_ID = 9
    INVALID_SPI = 11
    NO_PROPOSAL_CHOSEN = 14
    INVALID_KE_PAYLOAD = 17
    AUTHENTICATION_FAILED = 24
    SINGLE_PAIR_REQUIRED = 34
    NO_ADDITIONAL_SAS = 35
    INTERNAL_ADDRESS_FAILURE = 36
    FAILED_CP_REQUIRED = 37
    TS_UNACCEPTABLE = 38
    INVALID_SELECTORS = 39
    TEMPORARY_FAILURE = 43
    CHILD_SA_NOT_FOUND = 44
    INITIAL_CONTACT = 16384
    SET_WINDOW_SIZE = 16385
    ADDITIONAL_TS_POSSIBLE = 16386
    IPCOMP_SUPPORTED = 16387
    NAT_DETECTION_SOURCE_IP = 16388
    NAT_DETECTION_DESTINATION_IP = 16389
    COOKIE = 16390
    USE_TRANSPORT_MODE = 16391
    REKEY_SA = 16393
    MOBIKE_SUPPORTED = 16396
    MULTIPLE_AUTH_SUPPORTED = 16404  # RFC 4739 §3.1
    REDIRECT_SUPPORTED = 16406  # RFC 5685 §9
    EAP_ONLY_AUTHENTICATION = 16417  # RFC 5998 §6
    CHILDLESS_IKEV2_SUPPORTED = 16418  # RFC 6023 §4
    IKEV2_MESSAGE_ID_SYNC_SUPPORTED = 16420  # RFC 6311 §5
    IKEV2_FRAGMENTATION_SUPPORTED = 16430  # RFC 7383 §2.3
    SIGNATURE_HASH_ALGORITHMS = 16431  # RFC 7427 §4


def notify_name(notify_type: int) -> str:
    """The registry name of a notify type, or its number when unassigned."""
    kind = lookup(NotifyType, notify_type)
    return kind.name if isinstance(kind, NotifyType) else str(kind)


def is_error_notify(notify_type: int) -> bool:
    """True for error notify types (RFC 7296 §3.10.1: types below 16384)."""
    return notify_type < 16384
