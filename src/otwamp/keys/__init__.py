"""Where shared secrets come from (layer 3): pass-phrase files, IKEv2 SAs."""
