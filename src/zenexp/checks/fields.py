"""The composed task config: missing values, keys its dataclasses do not declare, bounds declared with
`Annotated`, facts fixed by the data, and targets no registered config uses."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence
from typing import Annotated, Any, get_args, get_origin, get_type_hints

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from zenexp import compat
from zenexp.checks.combinations import check_combinations
from zenexp.checks.composing import first_line, missing, no_such_field
from zenexp.checks.overrides import check_overrides
from zenexp.configs import Fixed
from zenexp.configs.schema import (
    BOUNDS,
    HYDRA_KEYS,
    bounds,
    describe_bounds,
    join,
    plain,
    registered_targets,
    targets,
    type_word,
    words,
)
from zenexp.run.resume import resume_problems


def check_config(cfg: DictConfig, overrides: Sequence[str] = ()) -> list[str]:
    """Every problem of a composed task config; an empty list means it will run."""
    problems = check_overrides(overrides)
    try:
        resolved = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    except OmegaConfBaseException as error:  # an interpolation that points nowhere
        return [*problems, f"{error.full_key}: {first_line(error)}"]
    problems += [missing(cfg, path) for path in sorted(OmegaConf.missing_keys(cfg))]
    if problems:
        return problems
    problems += list(_check_fields(cfg, ""))
    # As written and as resolved: an interpolation must not bring in a target either.
    allowed = registered_targets()
    problems += sorted({*_check_targets(plain(cfg), allowed), *_check_targets(resolved, allowed)})
    if problems:
        return problems
    problems = check_combinations(cfg)
    if cfg.get("resume") is not None and not problems:
        problems = resume_problems(cfg)
    return problems


def _check_fields(node: DictConfig, path: str) -> Iterator[str]:
    """Fields removed (`~field`), keys the node's dataclass does not declare, and `Annotated` bounds."""
    schema = OmegaConf.get_type(node)
    if isinstance(schema, type) and dataclasses.is_dataclass(schema):
        fields = {f.name: f for f in dataclasses.fields(schema)}
        for unknown in {str(key) for key in node.keys()} - fields.keys():
            yield f"{join(path, unknown)}: {no_such_field(path, unknown, fields)}"
        for name in sorted(fields.keys() - {str(key) for key in node.keys()} - HYDRA_KEYS):
            if fields[name].init and not name.startswith("_"):
                yield f"{join(path, name)}: removed (~{join(path, name)}), but every run needs it; set a value instead"
        for name, hint in get_type_hints(schema, include_extras=True).items():
            if name in node and get_origin(hint) is Annotated:
                try:
                    value = node[name]
                except OmegaConfBaseException as error:
                    yield f"{join(path, name)}: {first_line(error)}"
                    continue
                yield from check_value(join(path, name), value, get_args(hint))
                if Fixed in get_args(hint)[1:]:
                    yield from _check_fixed(join(path, name), value, OmegaConf.structured(schema)[name])
    for key in node.keys():
        child = compat.child_node(node, key)
        # A list of configs, too: `augment=flip_crop`'s transforms (`augment.transforms.0.padding`).
        items: list[tuple[int | None, Any]] = [(None, child)]
        if isinstance(child, ListConfig) and not compat.is_interpolation(child) and not compat.is_none(child):
            items = [(i, compat.child_node(child, i)) for i in range(len(child))]
        for index, item in items:
            if isinstance(item, DictConfig) and not compat.is_missing(item) and not compat.is_none(item):
                where = join(path, str(key) if index is None else f"{key!s}.{index}")
                yield from _check_fields(item, where)


def check_value(path: str, value: Any, hint_args: tuple[Any, ...]) -> Iterator[str]:
    """Bounds apply to a number, and to each number of a fixed-length tuple (an image shape)."""
    annotation, metadata = hint_args[0], hint_args[1:]
    if isinstance(value, ListConfig):
        items = list(value)
        arity = get_args(annotation)
        if get_origin(annotation) is tuple and Ellipsis not in arity and len(items) != len(arity):
            yield f"{path}={items}: expected {len(arity)} values, got {len(items)}"
            return
        if any(not _in_bounds(item, metadata) for item in items):
            yield f"{path}={items}: expected each value {describe_bounds(metadata)}"
        return
    expected = f"{type_word(annotation)} {describe_bounds(metadata)}"
    if isinstance(value, str) and (allowed := words(metadata)):
        if value not in allowed:
            quoted = " (a number without quotes)" if value.strip().isdigit() else ""
            yield f"{path}={value!r}: expected {expected}{quoted}"
    elif isinstance(value, float) and not math.isfinite(value):
        yield f"{path}={value}: expected a finite number"
    elif not _in_bounds(value, metadata):
        yield f"{path}={value}: expected {expected}"


def _in_bounds(value: Any, metadata: Sequence[Any]) -> bool:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return True
    return all(
        BOUNDS[type(bound)][0](value, getattr(bound, BOUNDS[type(bound)][2])) for bound in bounds(metadata)
    )


def _check_fixed(path: str, value: Any, held: Any) -> Iterator[str]:
    """A fact of the data (`Fixed`) must keep the value the dataset's config declares."""
    plain_value = OmegaConf.to_container(value) if isinstance(value, ListConfig) else value
    expected = OmegaConf.to_container(held) if isinstance(held, ListConfig) else held
    if plain_value != expected:
        yield f"{path}={plain_value}: fixed by the data, which holds {expected}; choose another dataset instead"


def _check_targets(config: Any, allowed: set[str]) -> Iterator[str]:
    for path, target in targets(config):
        if target not in allowed:
            yield (
                f"{path}={target}: not the target of any registered config; choose an option of the "
                f"group by name, or register a config of your own (see docs/configs.md)"
            )
