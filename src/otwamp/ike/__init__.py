"""IKEv2 (RFC 7296) for RFC 7717 IKEv2-derived O/TWAMP keys: childless IKE SAs (RFC 6023).

Layers, lowest first (each imports only from those before it):

* ``registry``, ``wire``: IANA code points and the wire formats, pure and total.
* ``crypto``: prf/prf+, SKEYSEED and SK_*, the SK payload, DH groups, AUTH (PSK, signatures).
* ``proposal``, ``trust``, ``policy``: suites and proposal choice, certificates, configuration.
* ``timers``, ``admission``, ``throttle``, ``handshake``, ``keys``, ``authentication``,
  ``rekey``, ``session``, ``initiator``, ``responder``, ``endpoint``: sans-I/O machines; time
  and randomness are passed in, and their timers are ``get_timer()`` / ``handle_timer(now)``.
* ``daemon``, ``broker``, ``service``, ``config``: asyncio UDP driver, key broker, TOML config.

Only prf(SK_d, "IPPM") leaves this package (``sa.IkeSa.ippm_key``), never SK_d (DESIGN D7).
"""
