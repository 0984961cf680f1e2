"""The overrides as typed, before composing: they parse, and `_target_`, the other underscore keys and
what Hydra sets itself are not for the command line; the jobs a basic-sweeper multirun would launch."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Sequence
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import OverrideParseException

from zenexp import compat
from zenexp.configs.schema import options
from zenexp.errors import UserError

CONFIG_FROM_TEXT = re.compile(r"\$\{\s*oc\.(create|decode)\s*:")


@functools.cache
def parser() -> OverridesParser:
    return OverridesParser.create()  # stateless, and costly to make (~0.5 ms)


@functools.lru_cache(maxsize=65536)
def parse_line(line: str) -> Override:
    """One override, parsed once however many jobs of a sweep share it."""
    (override,) = parser().parse_overrides([line])
    return override


def sweep_points(overrides: Sequence[str]) -> list[list[str]]:
    """The jobs a basic-sweeper multirun would launch: `a=1,2 b=x,y` gives four."""
    try:
        parsed = parser().parse_overrides(list(overrides))
    except OverrideParseException:
        return [list(overrides)]  # check_point names the line that does not parse
    for override in parsed:
        if override.is_sweep_override() and not (override.is_choice_sweep() or override.is_range_sweep()):
            raise UserError(
                f"{override.input_line}: the basic sweeper runs lists (a,b,c) and range(); an interval is for "
                f"a sweeper that samples: add hydra/sweeper=lr_model_search (pip install 'zenexp[sweep]')"
            )
    return compat.sweep_jobs(parsed)


def check_overrides(overrides: Sequence[str]) -> list[str]:
    """Refuse overrides that do not parse, and those of `_target_`, `_partial_`, `_zen_target`, ..."""
    problems = []
    for line in overrides:
        try:
            override = parse_line(line)
        except OverrideParseException:
            problems.append(
                f"{line}: not a valid override; write key=value, and quote a value with special "
                f"characters: 'dataset.root=\"~/data\"'"
            )
            continue
        if not override.key_or_group:
            problems.append(f"{line}: no key; write key=value, e.g. optim.lr=0.01")
            continue
        problem = _hydra_internals(override) or _internal_key(override) or _no_option(override)
        if problem:
            problems.append(problem)
    return problems


def _no_option(override: Override) -> str | None:
    """`model=null`: Hydra would stop on it with a traceback; a group takes one of its options."""
    if override.value() is not None or override.is_delete():
        return None
    known = options(override.key_or_group)  # looked up only for a null: this runs for every line of a sweep
    return (
        f"{override.input_line}: {override.key_or_group} needs one of its options: {', '.join(known)}"
        if known
        else None
    )


def _hydra_internals(override: Override) -> str | None:
    """What Hydra sets itself (hydra.runtime), where it reads configs from (hydra.searchpath: composing
    would already import from there), a config placed into Hydra's own settings (`group@hydra...`), and
    resolvers that turn text into configs (which could hold a `_target_` no check sees)."""
    if override.key_or_group.startswith(("hydra.runtime", "hydra.searchpath")):
        return f"{override.input_line}: Hydra sets hydra.runtime itself, and hydra.searchpath would read configs from elsewhere; neither may be overridden"
    if (override.package or "").startswith("hydra"):
        return f"{override.input_line}: a config cannot be placed into Hydra's own settings"
    if CONFIG_FROM_TEXT.search(override.input_line or ""):
        return f"{override.input_line}: oc.create and oc.decode build configs from text; write the value itself as an override"
    return None


def _internal_key(override: Override) -> str | None:
    key = override.key_or_group
    if key.startswith("hydra"):
        return None  # checked once composed, against the allowlist
    internal = [part for part in key.replace("/", ".").split(".") if part.startswith("_")]
    internal += [name for name in _keys(override.value()) if name.startswith("_")]
    if not internal:
        return None
    group = key.split(".")[0]
    choose = f"choose with {group}=<option> ({', '.join(options(group))})" if options(group) else ""
    return (
        f"{override.input_line}: {internal[0]} is fixed by the registered configs and cannot be "
        f"overridden; {choose or 'register a config of your own (see docs/configs.md)'}"
    )


def _keys(value: Any) -> Iterator[str]:
    """The keys inside a dict-valued override such as `model={_target_:os.system}`."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield str(key)
            yield from _keys(child)
    elif isinstance(value, list):
        for child in value:
            yield from _keys(child)
