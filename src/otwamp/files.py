"""Bounded reads of the files otwamp is pointed at, and private atomic writes of secrets.

Reads follow symbolic links (an operator may link a configuration into place)
but refuse anything that is not a regular file, so ``/dev/zero`` or a FIFO
fails at once instead of filling memory or blocking. Writes never follow a
link: the data goes to a fresh temporary file that only its owner can read,
created next to the target with O_EXCL|O_NOFOLLOW, then renamed onto it.
"""

import contextlib
import os
import secrets
import stat
from pathlib import Path

from otwamp.errors import ConfigError

_READ = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC  # a FIFO must not block open
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
PRIVATE = 0o600


class MissingFileError(ConfigError):
    """The file to read does not exist."""


def read_bounded(path: Path, limit: int, what: str) -> bytes:
    """The contents of the regular file ``path``; ConfigError if larger than ``limit`` octets."""
    try:
        _check_readable(path, os.stat(path), limit, what)
        descriptor = os.open(path, _READ)
    except FileNotFoundError:
        raise MissingFileError(f"{path}: no such {what}") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {_reason(error)}") from None
    with os.fdopen(descriptor, "rb") as handle:
        # Checked again on the descriptor: the file may have been swapped since stat().
        _check_readable(path, os.fstat(descriptor), limit, what)
        try:
            data = handle.read(limit + 1)  # a file may grow, or lie about its size (/proc)
        except OSError as error:
            raise ConfigError(f"{path}: cannot read: {_reason(error)}") from None
    if len(data) > limit:
        raise _too_large(path, limit, what)
    return data


def read_text_bounded(path: Path, limit: int, what: str) -> str:
    """The UTF-8 text of the regular file ``path``, at most ``limit`` octets."""
    try:
        return read_bounded(path, limit, what).decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: {what} is not UTF-8 text") from None


def check_replaceable(path: Path) -> os.stat_result | None:
    """The status of ``path`` if it exists; ConfigError unless a private file can replace it."""
    try:
        status: os.stat_result | None = os.lstat(path)
    except FileNotFoundError:
        status = None
    except OSError as error:
        raise ConfigError(f"{path}: cannot write: {_reason(error)}") from None
    if status is not None and not stat.S_ISREG(status.st_mode):
        raise ConfigError(f"{path}: not a regular file, refusing to replace it")
    directory = path.parent
    if not directory.is_dir():
        raise ConfigError(f"{path}: cannot write: no such directory {directory}")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ConfigError(f"{path}: cannot write: directory {directory} is not writable")
    return status


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically by ``data``, readable by its owner only (0600 at most)."""
    status = check_replaceable(path)
    # Never wider than the file it replaces, nor than 0600; umask may narrow it further.
    # The new file belongs to whoever writes it: giving it the old file's owner
    # would hand the secret to anyone who planted that file.
    mode = PRIVATE if status is None else stat.S_IMODE(status.st_mode) & PRIVATE
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        descriptor = os.open(temporary, _CREATE, mode)
    except OSError as error:
        raise ConfigError(f"{path}: cannot write: {_reason(error)}") from None
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(descriptor)
        os.replace(temporary, path)
    except OSError as error:
        _remove(temporary)
        raise ConfigError(f"{path}: cannot write: {_reason(error)}") from None
    except BaseException:
        _remove(temporary)
        raise
    _sync_directory(path.parent)


def _check_readable(path: Path, status: os.stat_result, limit: int, what: str) -> None:
    if not stat.S_ISREG(status.st_mode):
        raise ConfigError(f"{path}: not a regular file, cannot be a {what}")
    if status.st_size > limit:
        raise _too_large(path, limit, what)


def _too_large(path: Path, limit: int, what: str) -> ConfigError:
    return ConfigError(f"{path}: larger than {limit} octets, the limit for a {what}")


def _remove(temporary: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temporary)


def _sync_directory(directory: Path) -> None:
    """Make the rename durable; some file systems cannot sync a directory, which is harmless."""
    with contextlib.suppress(OSError):
        descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _reason(error: OSError) -> str:
    return error.strerror or str(error)
