"""Parsing of mode lists: ``open,authenticated,encrypted,mixed`` or twping's letters ``OAEM``."""

from otwamp.errors import ConfigError
from otwamp.wire.registry import MODE_NAMES, TwampMode
from otwamp.wire.twamp_features import EXTENSION_BITS, EXTENSION_NAMES

_BY_NAME = {name: mode for mode, name in MODE_NAMES.items()}
_BY_LETTER = {name[0].upper(): mode for name, mode in _BY_NAME.items()}


def parse_modes(text: str) -> tuple[TwampMode, ...]:
    """The modes a comma list (or a string of letters O, A, E, M) names, in the order given."""
    words = [word.strip().lower() for word in text.split(",")]
    if len(words) == 1 and words[0] not in _BY_NAME and _all_letters(words[0]):
        modes = [_BY_LETTER[letter] for letter in words[0].upper()]
    else:
        for word in words:
            if word not in _BY_NAME:
                raise ConfigError(
                    f"unknown mode {word!r}: use {', '.join(_BY_NAME)} (or letters OAEM)"
                )
        modes = [_BY_NAME[word] for word in words]
    return tuple(dict.fromkeys(modes))


def _all_letters(word: str) -> bool:
    return bool(word) and all(letter in _BY_LETTER for letter in word.upper())


def modes_word(modes: tuple[TwampMode, ...]) -> TwampMode:
    """The Modes bits of a set of modes."""
    word = TwampMode(0)
    for mode in modes:
        word |= mode
    return word


def parse_extensions(text: str) -> int:
    """The TWAMP-Modes bits of an optional-mode list (RFC 5938, 6038, 7750): names, all, none."""
    words = [word.strip().lower() for word in text.split(",") if word.strip()]
    if words in (["all"], ["none"]):
        return EXTENSION_BITS if words == ["all"] else 0
    bits = 0
    for word in words:
        if word not in EXTENSION_NAMES:
            names = ", ".join(EXTENSION_NAMES)
            raise ConfigError(f"unknown TWAMP extension {word!r}: use {names}, all or none")
        bits |= EXTENSION_NAMES[word]
    return bits
