"""One-line failures for every command: ``otwamp: reason`` and exit status 1."""

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import click

from otwamp.errors import OtwampError

P = ParamSpec("P")
R = TypeVar("R")


class CliError(click.ClickException):
    """A failure printed as one line, ``otwamp: message``, with exit status 1."""

    def show(self, file: Any = None) -> None:
        click.echo(f"otwamp: {self.message}", err=True)


def one_line_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn our own exceptions into a one-line message instead of a traceback."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except OtwampError as exc:
            raise CliError(str(exc)) from None

    return wrapper
