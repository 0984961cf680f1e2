"""One job's overrides, or a whole sweep's, checked without running anything: a sweep at the cost of a few
jobs (jobs that choose the same config groups share one composed config)."""

from __future__ import annotations

import copy
import dataclasses
import functools
from collections.abc import Sequence
from typing import Annotated, get_args, get_origin, get_type_hints

from hydra.core.override_parser.types import Override
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from zenexp import compat
from zenexp.checks.composing import explain_compose_error, first_line
from zenexp.checks.fields import check_config, check_value
from zenexp.checks.hydra_settings import check_hydra
from zenexp.checks.overrides import check_overrides, parse_line
from zenexp.configs.schema import compose_config, is_group_choice


def check_point(overrides: Sequence[str], with_hydra: bool = True) -> list[str]:
    """Every problem of one job's overrides (of its task config only, without `with_hydra`), found without
    running anything."""
    problems = check_overrides(overrides)
    if problems:
        return problems
    try:
        cfg = compose_config(overrides, with_hydra=with_hydra)
    except (HydraException, OmegaConfBaseException) as error:
        return explain_compose_error(overrides) or [str(error).splitlines()[0]]
    if not with_hydra:
        return check_config(cfg)
    return check_hydra(cfg.hydra) + check_config(task_part(cfg))


def check_points(points: Sequence[Sequence[str]]) -> dict[int, list[str]]:
    """The problems of each job of a sweep (by index; valid jobs left out), at the cost of a few jobs.

    Jobs that choose the same config groups share one composed config. The first of them is checked whole;
    in the others, each value that differs from the first's is checked against its field's declared type
    and bounds alone (once per distinct value). A job that sets a field other checks combine (the data, the
    tracker, the device, ...) or writes an interpolation, and every job of a group whose first job has
    problems, is checked whole, as is a job whose values reach into `hydra`.
    """
    groups: dict[tuple[str, ...], list[int]] = {}
    parsed: dict[int, list[Override]] = {}
    failures = {}
    for index, point in enumerate(points):
        if problems := check_overrides(point):
            failures[index] = problems
            continue
        parsed[index] = [parse_line(line) for line in point]
        choices = tuple(str(o.input_line) for o in parsed[index] if is_group_choice(o))
        groups.setdefault(choices, []).append(index)
    checked: dict[str, tuple[bool, list[str]] | None] = {}  # one value's (composes, problems), by its line
    for choices, members in groups.items():
        first, *others = members
        base = _composed_base(choices)
        failures[first] = _whole(points[first], base, parsed[first])
        first_values = {o.input_line: o.key_or_group for o in _values(parsed[first])}
        for index in others:
            values = _values(parsed[index])
            differing = [o for o in values if o.input_line not in first_values]
            light = None
            keys = [o.key_or_group for o in values]
            if (
                base is not None
                and not failures[first]
                and len(set(keys)) == len(keys) == len(first_values)  # one value per key, as in the first
                and set(keys) == set(first_values.values())
                and all(_on_its_own(o) for o in values)
            ):
                for override in differing:
                    line = str(override.input_line)
                    if line not in checked:
                        checked[line] = _value_problems(base[0], override)
                light = [checked[str(o.input_line)] for o in differing]
            if light is None or None in light:
                failures[index] = _whole(points[index], base, parsed[index])
                continue
            results = [result for result in light if result is not None]
            # As a whole check would: a value that does not compose hides the bounds of the others.
            composes = all(ok for ok, _ in results)
            failures[index] = [p for ok, problems in results if composes or not ok for p in problems]
    return {index: problems for index, problems in sorted(failures.items()) if problems}


def _values(overrides: list[Override]) -> list[Override]:
    return [override for override in overrides if not is_group_choice(override)]


def _composed_base(choices: tuple[str, ...]) -> tuple[DictConfig, list[str]] | None:
    """The task config of these choices and the problems of its `hydra` part; None when it does not compose."""
    try:
        cfg = compose_config(choices, with_hydra=True)
    except (HydraException, OmegaConfBaseException):
        return None
    return task_part(cfg), check_hydra(cfg.hydra)


def _whole(
    point: Sequence[str], base: tuple[DictConfig, list[str]] | None, overrides: list[Override]
) -> list[str]:
    """Every problem of one job: its values applied to a copy of its composed config, the way Hydra applies
    them (`ConfigLoaderImpl._apply_overrides_to_config`), or composed from scratch when that cannot say."""
    values = _values(overrides)
    if base is None or any(o.key_or_group.startswith("hydra") for o in values):
        return check_point(point)
    task_cfg, hydra_problems = base
    cfg = copy.deepcopy(task_cfg)
    try:
        compat.apply_overrides(values, cfg)
    except (HydraException, OmegaConfBaseException):
        return check_point(point)  # which override fails, and why
    return hydra_problems + check_config(cfg)


# Fields that the checks of a whole config combine with others: a job setting one is checked whole.
COMBINED = (
    "dataset",
    "tracker",
    "resume",
    "model.image_shape",
    "trainer.device",
    "trainer.devices",
    "trainer.nodes",
    "trainer.batch_size",
    "hydra",
)


def _on_its_own(override: Override) -> bool:
    """Whether a value can be checked against its field alone: not an interpolation (written `${...}`, or
    escaped by a sweep) or `???`, not a key added or removed, not a dict or list, not a field that other
    checks combine with the rest of the config (`resume=` is compared with a whole saved config)."""
    key, value = override.key_or_group, override.value()
    return not (
        override.is_delete()
        or override.is_add()
        or override.is_force_add()
        or key.split(".")[0] in COMBINED
        or key.startswith(COMBINED)
        or "$" in str(override.input_line)
        or value == "???"
        or isinstance(value, (dict, list))
    )


def _value_problems(cfg: DictConfig, override: Override) -> tuple[bool, list[str]] | None:
    """Whether one value that can be checked on its own (`_on_its_own`) has its field's declared type (would
    compose), and its problems against the type and bounds; None when only the whole config can tell."""
    key, line, value = override.key_or_group, str(override.input_line), override.value()
    parent_path, _, name = key.rpartition(".")
    parent = OmegaConf.select(cfg, parent_path) if parent_path else cfg
    schema = OmegaConf.get_type(parent) if isinstance(parent, DictConfig) else None
    if not (isinstance(schema, type) and dataclasses.is_dataclass(schema)):
        return None
    hint = get_type_hints(schema, include_extras=True).get(name)
    if hint is None:
        return None
    probe = _probe(schema)
    try:
        probe[name] = value  # OmegaConf's own validation of the declared type
    except OmegaConfBaseException as error:
        return False, [f"{line}: {first_line(error)}"]
    if get_origin(hint) is not Annotated:
        return True, []
    try:
        return True, list(check_value(key, probe[name], get_args(hint)))
    except OmegaConfBaseException:
        return None


@functools.cache
def _probe(schema: type) -> DictConfig:
    """An empty structured config of `schema`, to validate single values against."""
    probe: DictConfig = OmegaConf.structured(schema)
    return probe


def task_part(cfg: DictConfig) -> DictConfig:
    """The config without its `hydra` node, as the task receives it (typed, interpolations intact)."""
    task_cfg = copy.deepcopy(cfg)
    with open_dict(task_cfg):
        task_cfg.pop("hydra", None)
    return task_cfg
