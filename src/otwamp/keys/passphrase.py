"""Pass-phrase files in perfSONAR's pfs format (RFC 4656 §3.1 shared secrets).

One line per identity: ``identity<TAB>hex(pass-phrase)``; blank lines and
lines starting with ``#`` are ignored. The identity is the KeyID as UTF-8,
1 to 80 octets; a pass-phrase MUST NOT contain newlines (RFC 4656 §3.1).
"""

import logging
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from otwamp.errors import ConfigError, KeySourceError
from otwamp.files import MissingFileError, read_text_bounded, write_private
from otwamp.keys.source import Credentials, KeySourceKind
from otwamp.wire.setup import KEY_ID_SIZE, decode_key_id, encode_key_id

PFS_LIMIT = 1 << 20  # about 7,000 identities with 32-octet pass-phrases
EXPOSED = stat.S_IRGRP | stat.S_IROTH
log = logging.getLogger("otwamp.keys")


def check_identity(identity: str) -> None:
    """Raise ConfigError unless ``identity`` can be a KeyID."""
    raw = identity.encode("utf-8")
    if not 1 <= len(raw) <= KEY_ID_SIZE or "\t" in identity or "\n" in identity or "\0" in identity:
        raise ConfigError(
            f"an identity is 1 to {KEY_ID_SIZE} UTF-8 octets without tabs, newlines or NUL"
        )


def check_passphrase(passphrase: bytes) -> None:
    """Raise ConfigError unless ``passphrase`` is usable (non-empty, no newline)."""
    if not passphrase or b"\n" in passphrase or b"\r" in passphrase:
        raise ConfigError("a pass-phrase must be non-empty and contain no newline (RFC 4656 §3.1)")


@dataclass(slots=True)
class PassphraseFile:
    """The identities and pass-phrases of one pfs file."""

    path: Path
    entries: dict[str, bytes] = field(default_factory=dict, repr=False)
    name: KeySourceKind = KeySourceKind.PASSPHRASE
    ikev2_derived: bool = False

    @classmethod
    def load(cls, path: Path, missing_ok: bool = False) -> "PassphraseFile":
        """Read ``path``; a malformed line is a ConfigError naming its number."""
        try:
            text = read_text_bounded(path, PFS_LIMIT, "pass-phrase file")
        except MissingFileError:
            if missing_ok:
                return cls(path)
            raise
        entries: dict[str, bytes] = {}
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            identity, tab, hexed = line.partition("\t")
            try:
                if not tab:
                    raise ValueError
                passphrase = bytes.fromhex(hexed.strip())
                check_identity(identity)
                check_passphrase(passphrase)
            except (ValueError, ConfigError):
                raise ConfigError(
                    f"{path}:{number}: expected 'identity<TAB>hex(pass-phrase)'"
                ) from None
            entries[identity] = passphrase
        return cls(path, entries)

    @classmethod
    def load_server_keys(cls, path: Path) -> "PassphraseFile":
        """Read a server's ``--keyfile``, warning when group or others can read it."""
        keys = cls.load(path)
        _warn_if_exposed(path)
        return keys

    def save(self) -> None:
        """Replace the file atomically by a private one (0600, never wider than before)."""
        lines = "".join(
            f"{identity}\t{secret.hex()}\n" for identity, secret in sorted(self.entries.items())
        )
        write_private(self.path, lines.encode("utf-8"))

    async def server_secret(self, key_id: bytes, peer: str) -> Credentials | None:
        """The pass-phrase of the identity a KeyID names, or None (from memory, at once)."""
        identity = decode_key_id(key_id)
        secret = self.entries.get(identity)
        return None if secret is None else Credentials(key_id, secret, self.name, identity)

    def identity_credentials(self, identity: str) -> Credentials:
        """The KeyID and pass-phrase of ``identity``."""
        secret = self.entries.get(identity)
        if secret is None:
            raise KeySourceError(f"{self.path}: no pass-phrase for identity {identity!r}")
        return Credentials(encode_key_id(identity), secret, self.name, identity)


@dataclass(frozen=True, slots=True)
class IdentityKeys:
    """A client's choice of one identity from a pass-phrase file (``-u ID -k FILE``)."""

    file: PassphraseFile
    identity: str
    name: KeySourceKind = KeySourceKind.PASSPHRASE
    ikev2_derived: bool = False

    async def credentials_for(self, server: str, derived_offered: bool = True) -> Credentials:
        """The identity's KeyID and pass-phrase, whatever the server offers."""
        return self.file.identity_credentials(self.identity)


def _warn_if_exposed(path: Path) -> None:
    """Log a warning when others than the owner may read the pass-phrases in ``path``."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return  # just read; a file replaced since then is checked on the next load
    if mode & EXPOSED:
        log.warning(
            "key file %s is readable by group/others (mode %04o); chmod 600 %s", path, mode, path
        )
