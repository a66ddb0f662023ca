"""IKEv2 wire formats: header, payloads and messages (RFC 7296 §3)."""
