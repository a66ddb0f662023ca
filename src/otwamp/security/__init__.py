"""Security layer (layer 2): O/TWAMP keys, Token, control streams and test packets.

Pure functions and classes on top of ``cryptography``; no I/O, no clocks.
Modules: ``kdf`` (shared secret to secret key), ``sessionkeys``, ``token``,
``control`` (the per-direction control streams), ``testkeys`` and
``testpacket``; ``primitives`` holds the AES and HMAC building blocks.
"""
