"""STAMP (RFC 8762) and its optional extensions (RFC 8972), sans-I/O.

``packets``: the base test packets of both directions, unauthenticated and
authenticated (HMAC-SHA-256-128); ``tlv``: the RFC 8972 TLVs; ``reflector``
and ``sender``: the Session-Reflector and Session-Sender engines; ``keys``:
HMAC keys by Session Identifier and peer. Drivers live in
``otwamp.drivers.stamp_reflector`` and ``otwamp.drivers.stamp_sender``.
"""
