"""TOML files whose errors name the file, the line and the key.

tomllib gives values without positions, so the line of a key is found by
scanning the text: the table headers (``[a.b]``, ``[[test]]``, counted per
array) and then ``key =`` inside the table's lines. A key that cannot be
found (an inline table, a default) is reported at its table's header.
"""

import re
import tomllib
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from otwamp.errors import ConfigError
from otwamp.files import MissingFileError, read_text_bounded

KeyPath = tuple[str | int, ...]  # ("test", 1, "every"): the "every" of the second [[test]]
T = TypeVar("T")
LIMIT = 1 << 20  # octets: far beyond a real configuration or mesh file
_HEADER = re.compile(r"\s*(\[\[?)\s*([^\[\]#]+?)\s*\]\]?\s*(?:#.*)?$")
_DECODE_AT = re.compile(r"\s*\(at line (\d+), column \d+\)$")
_MISSING = object()


def dotted(key: KeyPath) -> str:
    """``test[2].every`` for ("test", 1, "every"): arrays counted from 1, as people count."""
    text = ""
    for part in key:
        text += f"[{part + 1}]" if isinstance(part, int) else f".{part}" if text else part
    return text


def _header_path(header: str) -> tuple[str, ...]:
    return tuple(part.strip().strip("\"'") for part in header.split("."))


@dataclass(frozen=True)
class TomlFile:
    """A parsed TOML file with its text, to say where a key is."""

    path: Path
    text: str
    document: dict[str, Any]

    @classmethod
    def read(cls, path: Path, what: str) -> "TomlFile":
        """Read and parse ``path``; ConfigError naming the file and line when it is not TOML."""
        try:
            text = read_text_bounded(path, LIMIT, what)
        except MissingFileError:
            raise ConfigError(f"{path}: cannot read: No such file or directory") from None
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            message = str(exc)
            at = _DECODE_AT.search(message)
            where = f"{path}:{at.group(1)}" if at else str(path)
            raise ConfigError(f"{where}: not valid TOML: {_DECODE_AT.sub('', message)}") from None
        return cls(path, text, document)

    def _headers(self) -> Iterator[tuple[int, KeyPath]]:
        """Each table header's line (1-based) and key path, arrays of tables indexed."""
        yield 1, ()
        counts: dict[tuple[str, ...], int] = {}
        for number, line in enumerate(self.text.splitlines(), 1):
            match = _HEADER.match(line)
            if match is None:
                continue
            names = _header_path(match.group(2))
            if match.group(1) == "[[":
                index = counts.get(names, 0)
                counts[names] = index + 1
                yield number, (*names, index)
            else:
                yield number, names

    def line(self, key: KeyPath) -> int:
        """The line where ``key`` is set, or its table's header line."""
        lines = self.text.splitlines()
        headers = list(self._headers())
        chosen = 0  # the innermost table holding the key
        for index, (_, path) in enumerate(headers):
            if key[: len(path)] == path and len(path) >= len(headers[chosen][1]):
                chosen = index
        start, path = headers[chosen]
        end = headers[chosen + 1][0] if chosen + 1 < len(headers) else len(lines) + 1
        rest = [part for part in key[len(path) :] if isinstance(part, str)]
        for candidate in (".".join(rest), rest[0]) if rest else ():
            pattern = re.compile(rf"\s*[\"']?{re.escape(candidate)}[\"']?\s*[=.]")
            for number in range(start, end):
                text = lines[number - 1]
                if pattern.match(text) and not _HEADER.match(text):
                    return number
        return start

    def error(self, key: KeyPath, message: str) -> ConfigError:
        """``FILE:LINE: KEY: message``."""
        return ConfigError(f"{self.path}:{self.line(key)}: {dotted(key)}: {message}")

    def root(self) -> "Table":
        """The whole document as a table."""
        return Table(self, (), self.document)


@dataclass(frozen=True)
class Table:
    """A table of a TomlFile and typed access to its keys; errors say file, line and key."""

    file: TomlFile
    path: KeyPath
    data: dict[str, Any]

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def error(self, key: str | None, message: str) -> ConfigError:
        """A ConfigError at ``key`` of this table (None: the table itself)."""
        return self.file.error(self.path if key is None else (*self.path, key), message)

    def check_keys(self, known: Collection[str]) -> None:
        """ConfigError at the first key that is not ``known`` (a typo never means a default)."""
        for key in self.data:
            if key not in known:
                raise self.error(key, f"unknown key (known: {', '.join(sorted(known))})")

    def value(self, key: str, kinds: tuple[type, ...], what: str, default: Any) -> Any:
        """The value of ``key``, which must be one of ``kinds`` (a boolean is no number)."""
        if key not in self.data:
            if default is _MISSING:
                raise self.error(None, f"{key} is missing")
            return default
        value = self.data[key]
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            raise self.error(key, f"must be {what}, not {value!r}")
        return value

    def string(self, key: str, default: Any = _MISSING) -> Any:
        """A string (or ``default``, of any type, when absent)."""
        return self.value(key, (str,), "a string", default)

    def boolean(self, key: str, default: bool) -> bool:
        """true or false."""
        value: bool = self.value(key, (bool,), "true or false", default)
        return value

    def integer(self, key: str, default: Any, least: int = 1, most: int | None = None) -> Any:
        """A whole number from ``least`` to ``most``."""
        value = self.value(key, (int,), "a whole number", default)
        if value is not None and (value < least or (most is not None and value > most)):
            bounds = f"from {least} to {most}" if most is not None else f"at least {least}"
            raise self.error(key, f"must be {bounds}, not {value!r}")
        return value

    def strings(self, key: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        """A string or an array of strings."""
        value = self.data.get(key, list(default))
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise self.error(key, f"must be a string or an array of strings, not {value!r}")
        return tuple(items)

    def positive(self, key: str, default: float | None) -> float | None:
        """A positive number."""
        value = self.value(key, (int, float), "a positive number", default)
        if value is not None and value <= 0:
            raise self.error(key, f"must be a positive number, not {value!r}")
        return None if value is None else float(value)

    def convert(self, key: str, parse: Callable[[Any], T], default: Any = _MISSING) -> T:
        """``parse(value)``, its ConfigError placed at the key."""
        if key not in self.data and default is not _MISSING:
            result: T = default
            return result
        value = self.data.get(key)
        if key not in self.data:
            raise self.error(None, f"{key} is missing")
        try:
            return parse(value)
        except ConfigError as exc:
            raise self.error(key, str(exc)) from None

    def table(self, key: str) -> "Table":
        """A sub-table (empty when absent)."""
        value = self.data.get(key, {})
        if not isinstance(value, dict):
            raise self.error(key, f"must be a table ([{dotted((*self.path, key))}])")
        return Table(self.file, (*self.path, key), value)

    def tables(self, key: str) -> list["Table"]:
        """An array of tables (``[[key]]``), possibly empty."""
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise self.error(key, f"must be an array of tables ([[{key}]])")
        return [
            Table(self.file, (*self.path, key, index), item) for index, item in enumerate(value)
        ]
