"""otwamp: OWAMP (RFC 4656) and TWAMP (RFC 5357) with IKEv2-derived keys (RFC 7717)."""

__version__ = "0.1.0"
