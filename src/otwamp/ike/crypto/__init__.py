"""IKEv2 cryptography on top of ``cryptography`` (RFC 7296 §2.13-2.15, §3.14)."""
