"""IKE_SA_INIT cookies (RFC 7296 §2.6)."""

from otwamp.ike.cookies import CookieGuard

NI = b"n" * 32
SPI = b"i" * 8


def test_cookie_binds_nonce_address_spi_and_secret():
    guard = CookieGuard(b"secret-1", version=7)
    cookie = guard.cookie(NI, "192.0.2.1", SPI)
    assert len(cookie) == 36 and cookie[:4] == b"\x00\x00\x00\x07"
    assert guard.valid(cookie, NI, "192.0.2.1", SPI)
    assert not guard.valid(cookie, NI, "192.0.2.2", SPI)
    assert not guard.valid(cookie, b"m" * 32, "192.0.2.1", SPI)
    assert not guard.valid(cookie, NI, "192.0.2.1", b"j" * 8)
    assert not CookieGuard(b"secret-2", version=7).valid(cookie, NI, "192.0.2.1", SPI)
    assert guard.cookie(NI, "2001:db8::1", SPI) != cookie


def test_secret_not_in_repr():
    assert "secret-1" not in repr(CookieGuard(b"secret-1"))
