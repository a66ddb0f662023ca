"""The daemon's TOML configuration."""

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from otwamp.errors import ConfigError
from otwamp.ike.admission import HalfOpenLimits
from otwamp.ike.config import load, parse_identity
from otwamp.ike.registry import IdType
from otwamp.ike.timers import Lifetimes
from otwamp.ike.wire.identity import Identity

from .certs import Authority

PSK_CONFIG = """
[local]
address = "127.0.0.1"
port = 15500
id = "resp.ippm.test"
proposals = ["aes128-sha256-x25519", "aes256-sha384-ecp384"]
broker = "ike.sock"

[[peers]]
id = "fqdn:init.ippm.test"
address = "127.0.0.2"
port = 15600
psk = "ippm-test-psk-0123456789"
initiate = true

[[peers]]
id = "email:ops@ippm.test"
psk_file = "ops.psk"
"""


def test_psk_configuration(tmp_path):
    (tmp_path / "ops.psk").write_text("second-secret\n")
    path = tmp_path / "ike.toml"
    path.write_text(PSK_CONFIG)
    config = load(path)
    assert config.local == ("127.0.0.1", 15500)
    assert config.broker == tmp_path / "ike.sock"
    assert config.policy.local_id == Identity.fqdn("resp.ippm.test")
    assert [str(s) for s in config.policy.suites] == [
        "aes128-sha256-x25519",
        "aes256-sha384-ecp384",
    ]
    first, second = config.peers
    assert (first.identity, first.address, first.initiate) == (
        Identity.fqdn("init.ippm.test"),
        ("127.0.0.2", 15600),
        True,
    )
    assert (second.identity, second.address, second.initiate) == (
        Identity.rfc822("ops@ippm.test"),
        None,
        False,
    )
    assert config.policy.psks == {
        first.identity: b"ippm-test-psk-0123456789",
        second.identity: b"second-secret",
    }
    assert "ippm-test-psk" not in repr(config)
    assert config.half_open == HalfOpenLimits(64, 1024, 4, 16)


def test_certificate_configuration(tmp_path):
    authority = Authority()
    credentials = authority.issue("resp", "p256", "resp.ippm.test")
    (tmp_path / "ca.pem").write_bytes(authority.certificate.public_bytes(Encoding.PEM))
    (tmp_path / "resp.pem").write_bytes(credentials.certificate.public_bytes(Encoding.PEM))
    (tmp_path / "resp.key").write_bytes(
        credentials.private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    )
    path = tmp_path / "ike.toml"
    path.write_text(
        '[local]\nid = "resp.ippm.test"\ncertificate = "resp.pem"\nkey = "resp.key"\n'
        'ca = ["ca.pem"]\n'
    )
    config = load(path)
    assert config.policy.credentials.certificate == credentials.certificate
    assert config.policy.trust.anchors == (authority.certificate,)
    assert config.local == ("0.0.0.0", 500)
    assert len(config.policy.suites) == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "ike.toml: missing \\[local\\]"),
        (
            '[local]\nid = "a.example"\nproposals = ["3des-md5-modp768"]\n',
            "local.proposals: proposal '3des-md5-modp768': unknown or unsupported algorithm '3des'",
        ),
        ('[local]\nid = "a.example"\nport = "five hundred"\n', "local.port: must be an integer"),
        ('[local]\nid = "a.example"\nport = 70000\n', "local.port: 70000 is not a UDP port"),
        ('[local]\nid = "a.example"\nprot = 500\n', "local.prot: unknown key"),
        ("[local]\n", "local.id: missing"),
        ('[local]\nid = "keyid:zz"\n', "local.id: bad identity"),
        (
            '[local]\nid = "a.example"\n[[peers]]\nid = "b"\ninitiate = true\npsk = "x"\n',
            "peers.initiate: needs peers.address",
        ),
        (
            '[local]\nid = "a.example"\n[[peers]]\nid = "b"\naddress = "nowhere"\n',
            "peers.address: 'nowhere' is not an IP",
        ),
        ('[local]\nid = "a.example"\n[[peers]]\nid = "b"\n', "peers.psk: peer b has no PSK"),
        (
            '[local]\nid = "a.example"\n[[peers]]\nid = "b"\npsk_file = "nope"\n',
            "peers.psk_file: cannot read nope",
        ),
        (
            '[local]\nid = "a.example"\ncertificate = "missing.pem"\nkey = "k"\n',
            "local.certificate: cannot read missing.pem",
        ),
        ('[local]\nid = "a.example"\ncertificate = "ike.toml"\n', "not a PEM certificate"),
        ('[local]\nid = "a.example"\nrekey_time = 0\n', "local.rekey_time: must be a positive"),
        (
            '[local]\nid = "a.example"\nrekey_time = 10\nlifetime = 5\n',
            "local.lifetime: 5 is less than rekey_time 10",
        ),
        (
            '[local]\nid = "a.example"\nmax_half_open_per_source = 0\n',
            "local: max_half_open_per_source must be from 1 to max_half_open",
        ),
        (
            '[local]\nid = "a.example"\nmax_half_open = 8\n',
            "local: max_half_open_per_source must be from 1 to max_half_open",
        ),
        (
            '[local]\nid = "a.example"\ncookie_threshold_per_source = 16\n',
            "local: cookie_threshold_per_source must be less than max_half_open_per_source",
        ),
        (
            '[local]\nid = "a.example"\ncookie_threshold = -1\n',
            "local: cookie_threshold and cookie_threshold_per_source must be >= 0",
        ),
        ('[local]\nid = "a.example"\nmax_half_open = "many"\n', "max_half_open: must be an int"),
        ("[local\n", "ike.toml: not valid TOML"),
        ('[remote]\nid = "a"\n', "unknown table 'remote'"),
    ],
)
def test_bad_configurations(tmp_path, text, message):
    path = tmp_path / "ike.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as caught:
        load(path)
    assert "\n" not in str(caught.value) and str(caught.value).startswith(str(path))


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"nothing\.toml: cannot read: No such file"):
        load(tmp_path / "nothing.toml")


def test_lifetimes(tmp_path):
    path = tmp_path / "ike.toml"
    path.write_text('[local]\nid = "a.example"\nrekey_time = 10\n')
    assert load(path).lifetimes == Lifetimes(10.0, 11.0, 1.0)
    path.write_text('[local]\nid = "a.example"\nrekey_time = 2\nlifetime = 3.5\n')
    assert load(path).lifetimes == Lifetimes(2.0, 3.5, 0.2)
    path.write_text('[local]\nid = "a.example"\n')
    assert load(path).lifetimes == Lifetimes()
    assert load(path).broker is None  # otwamp ike then uses DEFAULT_BROKER


def test_half_open_limits(tmp_path):
    path = tmp_path / "ike.toml"
    path.write_text(
        '[local]\nid = "a.example"\ncookie_threshold = 10\nmax_half_open = 100\n'
        "cookie_threshold_per_source = 0\nmax_half_open_per_source = 2\n"
    )
    assert load(path).half_open == HalfOpenLimits(10, 100, 0, 2)


def test_key_must_match_certificate(tmp_path):
    authority = Authority()
    credentials = authority.issue("resp", "p256", "resp.ippm.test")
    other = authority.issue("other", "p256", "other.ippm.test")
    (tmp_path / "resp.pem").write_bytes(credentials.certificate.public_bytes(Encoding.PEM))
    (tmp_path / "other.key").write_bytes(
        other.private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    )
    path = tmp_path / "ike.toml"
    path.write_text('[local]\nid = "resp.ippm.test"\ncertificate = "resp.pem"\nkey = "other.key"\n')
    with pytest.raises(ConfigError, match=r"local\.key: other\.key does not belong"):
        load(path)


@pytest.mark.parametrize(
    ("text", "identity"),
    [
        ("fqdn:a.example", Identity.fqdn("a.example")),
        ("a.example", Identity.fqdn("a.example")),
        ("email:u@a.example", Identity.rfc822("u@a.example")),
        ("u@a.example", Identity.rfc822("u@a.example")),
        ("ip:2001:db8::1", Identity.address("2001:db8::1")),
        ("192.0.2.1", Identity.address("192.0.2.1")),
        ("keyid:0102", Identity(IdType.KEY_ID, b"\x01\x02")),
        (
            "dn:CN=init.ippm.test,O=IPPM Test",
            Identity(
                IdType.DER_ASN1_DN,
                x509.Name.from_rfc4514_string("CN=init.ippm.test,O=IPPM Test").public_bytes(),
            ),
        ),
    ],
)
def test_identities(text, identity):
    assert parse_identity(text) == identity


def test_bad_identity():
    with pytest.raises(ConfigError, match="bad identity"):
        parse_identity("keyid:zz")
