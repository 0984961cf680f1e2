"""The one exception type for mistakes a user can fix, and the one way to raise the problems checks found."""

from __future__ import annotations

from collections.abc import Sequence


class UserError(Exception):
    """A mistake in the config or the environment; the CLI prints it as one line, without a traceback."""


def raise_problems(problems: Sequence[str]) -> None:
    """One problem as its line; several as a count and a line each."""
    if len(problems) == 1:
        raise UserError(problems[0])
    if problems:
        raise UserError(f"{len(problems)} problems:\n" + "\n".join(f"  {p}" for p in problems))
