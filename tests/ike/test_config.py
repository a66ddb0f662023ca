"""The daemon's TOML configuration."""

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from otwamp.errors import ConfigError
from otwamp.ike.config import load, parse_identity
from otwamp.ike.registry import IdType
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
    assert (config.cookie_threshold, config.max_half_open) == (64, 1024)


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
        ("", "missing \\[local\\]"),
        ('[local]\nid = "a.example"\nproposals = ["3des-md5-modp768"]\n', "unknown proposal"),
        ('[local]\nid = "a.example"\nport = "five hundred"\n', "port must be an integer"),
        (
            '[local]\nid = "a.example"\n[[peers]]\nid = "b"\ninitiate = true\n',
            "needs peers.address",
        ),
        ('[local]\nid = "a.example"\n[[peers]]\nid = "b"\naddress = "nowhere"\n', "not an IP"),
        ('[local]\nid = "a.example"\ncertificate = "missing.pem"\n', "missing.pem"),
        ("[local\n", "ike.toml"),
    ],
)
def test_bad_configurations(tmp_path, text, message):
    path = tmp_path / "ike.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
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
