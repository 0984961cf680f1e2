"""Every check of a job before any work starts, each problem one short line naming the field.

Cheapest first:
- the overrides as typed: they parse, and `_target_` and the other underscore keys are not for the command line;
- composing (Hydra and OmegaConf): bad types, unknown keys and unknown options, explained with what exists;
- the composed task config: missing values, bounds declared with `Annotated`, targets no registered config
  uses, and combinations that cannot work (data files missing, a split left empty, ...);
- the composed `hydra` config: every target and logging class is a registered one (the allowlist), the run
  directory is a new one, and Hydra's output stays inside it.

The CLI and `zenexp check` run these before Hydra starts. `launch()` reaches them through the resolver
`${zenexp.guard:}`, which Hydra resolves when it configures its own logging and when it builds `Guard`, its
first callback: before any other callback, the launcher, the sweeper or a run directory.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import math
import os
import re
import weakref
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, cast, get_args, get_origin, get_type_hints

from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException, MissingConfigException, OverrideParseException
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict
from omegaconf.errors import (
    ConfigAttributeError,
    ConfigKeyError,
    InterpolationResolutionError,
    OmegaConfBaseException,
)

from zenexp.configs import (
    GUARD,
    SLOTS,
    CIFAR10Conf,
    DigitsConf,
    Fixed,
    ImageFolderConf,
    MainConfig,
    MNISTConf,
    NetConf,
    usercode,
)
from zenexp.configs.schema import (
    BOUNDS,
    HYDRA_KEYS,
    bounds,
    compose_config,
    describe_bounds,
    is_group_choice,
    join,
    options,
    override_key,
    plain,
    references,
    registered_hydra_references,
    registered_targets,
    targets,
    type_name,
    type_word,
    words,
)
from zenexp.data import datasets, folders
from zenexp.errors import UserError
from zenexp.parallel import distributed, machine
from zenexp.run import rundir
from zenexp.run.models import Net
from zenexp.run.provenance import job_overrides
from zenexp.run.resume import resume_problems
from zenexp.run.train import resolve_device
from zenexp.sweep import search
from zenexp.tracking.recorder import tracker_problems

# Hydra's groups a zenexp extra installs more options into.
EXTRAS = {"hydra/launcher": "sweep", "hydra/sweeper": "sweep"}
NAME_MAX, PATH_MAX = 255, 4096
LOG_FILE = "${hydra.runtime.output_dir}/${hydra.job.name}.log"  # Hydra's own job log
CONFIG_FROM_TEXT = re.compile(r"\$\{\s*oc\.(create|decode)\s*:")
# zenexp's own Hydra settings (run and sweep directories, output_subdir, job name) as written, and
# Hydra's numbered job folders: what a job's `hydra` part holds unless an override changed it.
DEFAULT_HYDRA: dict[str, Any] = MainConfig().hydra
DEFAULT_HYDRA["sweep"]["subdir"] = "${hydra.job.num}"


# ---- entry points ----------------------------------------------------------------------------------------


def validate_job(cfg: DictConfig) -> None:
    """The task's first step (a zen pre_call), for the CLI and `launch()` alike: every check again, with the
    job's own `hydra` config. A refused job leaves nothing: what Hydra wrote for it is removed again."""
    hydra = HydraConfig.get()
    problems = check_config(cfg, job_overrides()) or _check_slot_choices(job_overrides())
    resume = cfg.get("resume")
    if resume and Path(hydra.runtime.output_dir).resolve() != Path(resume).resolve():
        problems.append(
            f"resume={resume}: a job continues the run of its own folder, {hydra.runtime.output_dir}"
        )
    problems = problems or check_hydra(cast(DictConfig, hydra), before_run=False)
    if problems:
        if not cfg.get("resume"):  # a resumed run's directory is never touched
            rundir.discard_refused(
                Path(hydra.runtime.output_dir), hydra.output_subdir, f"{hydra.job.name}.log"
            )
        raise_problems(problems)


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
    return check_hydra(cfg.hydra) + check_config(_task_part(cfg))


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
        parsed[index] = [_parse_line(line) for line in point]
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
    return _task_part(cfg), check_hydra(cfg.hydra)


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
        ConfigLoaderImpl._apply_overrides_to_config(values, cfg)
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
        return False, [f"{line}: {_first_line(error)}"]
    if get_origin(hint) is not Annotated:
        return True, []
    try:
        return True, list(_check_value(key, probe[name], get_args(hint)))
    except OmegaConfBaseException:
        return None


@functools.cache
def _parser() -> OverridesParser:
    return OverridesParser.create()  # stateless, and costly to make (~0.5 ms)


@functools.lru_cache(maxsize=65536)
def _parse_line(line: str) -> Override:
    """One override, parsed once however many jobs of a sweep share it."""
    (override,) = _parser().parse_overrides([line])
    return override


@functools.cache
def _probe(schema: type) -> DictConfig:
    """An empty structured config of `schema`, to validate single values against."""
    probe: DictConfig = OmegaConf.structured(schema)
    return probe


def sweep_points(overrides: Sequence[str]) -> list[list[str]]:
    """The jobs a basic-sweeper multirun would launch: `a=1,2 b=x,y` gives four."""
    try:
        parsed = _parser().parse_overrides(list(overrides))
    except OverrideParseException:
        return [list(overrides)]  # check_point names the line that does not parse
    for override in parsed:
        if override.is_sweep_override() and not (override.is_choice_sweep() or override.is_range_sweep()):
            raise UserError(
                f"{override.input_line}: the basic sweeper runs lists (a,b,c) and range(); an interval is for "
                f"a sweeper that samples: add hydra/sweeper=lr_model_search (pip install 'zenexp[sweep]')"
            )
    return [point for batch in BasicSweeper.split_arguments(parsed, None) for point in batch]


def raise_problems(problems: Sequence[str]) -> None:
    if len(problems) == 1:
        raise UserError(problems[0])
    if problems:
        raise UserError(f"{len(problems)} problems:\n" + "\n".join(f"  {p}" for p in problems))


class RefusedJob(InterpolationResolutionError, UserError):
    """A `UserError` raised by the guard's resolver. Being an `InterpolationResolutionError` too, OmegaConf
    and Hydra pass it on as it is, so `launch()` raises zenexp's one line, not a wrapped one."""

    def __str__(self) -> str:
        # OmegaConf raises it again with "full_key: ..." lines appended: show zenexp's own message only.
        return super().__str__().split("\n    full_key:")[0]


#: The config the guard last passed: Hydra resolves the guard twice per job (its logging, then the
#: callbacks), on the same config object, with nothing in between; checking it once is enough.
_passed: weakref.ref[DictConfig] | None = None


def check_guarded(root: DictConfig) -> str:
    """The resolver `${zenexp.guard:}` (see `Guard`): refuse the job before Hydra builds anything else."""
    global _passed
    if _passed is not None and _passed() is root:
        return "checked"
    if (nested := distributed.started_in_a_rank() or usercode.started_while_importing()) is not None:
        raise RefusedJob(nested)
    overrides = plain(root.hydra.overrides.task)
    if root.hydra.mode == RunMode.MULTIRUN:
        # A sweep's root leaves the swept values out (`model=net` is checked against the default dataset, not
        # the swept ones): here only what no swept value can change; each job is checked whole when it starts
        # (`validate_job`), before anything of its task is built.
        problems = check_hydra(root.hydra) + check_overrides(overrides)
    else:
        problems = check_hydra(root.hydra) + check_config(_task_part(root), overrides)
    try:
        raise_problems(problems)
    except UserError as error:
        raise RefusedJob(str(error)) from None
    _passed = weakref.ref(root)
    return "checked"


class Guard(Callback):
    """zenexp's first Hydra callback. Building it resolves `${zenexp.guard:}`, which checks the whole job:
    a `launch()` whose overrides name a target nobody registered, or that would write into another run's
    directory, stops here, before Hydra builds another callback, the launcher or the sweeper, or makes a
    run directory. (Hydra resolves the same guard earlier too, in `hydra.hydra_logging`.)"""

    def __init__(self, verdict: str) -> None:
        self.verdict = verdict


OmegaConf.register_new_resolver("zenexp.guard", lambda _root_: check_guarded(_root_), replace=True)


def _task_part(cfg: DictConfig) -> DictConfig:
    """The config without its `hydra` node, as the task receives it (typed, interpolations intact)."""
    task_cfg = copy.deepcopy(cfg)
    with open_dict(task_cfg):
        task_cfg.pop("hydra", None)
    return task_cfg


# ---- the overrides as typed ------------------------------------------------------------------------------


def check_overrides(overrides: Sequence[str]) -> list[str]:
    """Refuse overrides that do not parse, and those of `_target_`, `_partial_`, `_zen_target`, ..."""
    problems = []
    for line in overrides:
        try:
            override = _parse_line(line)
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
        f"overridden; {choose or 'register a config of your own (see the README)'}"
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


# ---- composing -------------------------------------------------------------------------------------------


def explain_compose_error(overrides: Sequence[str]) -> list[str]:
    """Compose with each override on its own (after the group choices) to say which ones fail and why."""
    lines = [str(o.input_line) for o in _parser().parse_overrides(list(overrides))]
    choices = [line for line in lines if options(override_key(line)) or override_key(line) in EXTRAS]
    problems = [_compose_problem(choices[:i], choice) for i, choice in enumerate(choices)]
    if not any(problems):
        problems = [_compose_problem(choices, line) for line in lines if line not in choices]
    return [problem for problem in problems if problem]


def _compose_problem(base: list[str], override: str) -> str | None:
    try:
        compose_config([*base, override], with_hydra=True)
    except MissingConfigException:
        group, _, choice = override.lstrip("+").partition("=")
        known = options(group)
        extra = f" (more with pip install 'zenexp[{EXTRAS[group]}]')" if group in EXTRAS else ""
        if not known and group in EXTRAS:
            return f"{override}: there is no {group} '{choice}'; Hydra's launchers and sweepers come with pip install 'zenexp[{EXTRAS[group]}]'"
        if not known:
            return f"{override}: there is no {group} '{choice}'; see zenexp --help"
        return f"{override}: there is no {group} '{choice}'; choose one of {', '.join(known)}{extra}"
    except (HydraException, OmegaConfBaseException) as error:
        cause = error.__cause__
        if isinstance(cause, (ConfigAttributeError, ConfigKeyError)):
            return f"{override}: {_unknown_key(base, override_key(override))}"
        if isinstance(cause, OmegaConfBaseException):
            return f"{override}: {_first_line(cause)}"
        return f"{override}: {str(error).splitlines()[0]}"
    return None


def _missing(cfg: DictConfig, path: str) -> str:
    if known := options(path):  # a slot left empty (~model)
        return f"{path} is missing (???): choose one of {', '.join(known)}, e.g. {path}={known[0]}"
    return f"{path} is missing (???): give it a value, e.g. {path}=<{type_name(cfg, path)}>"


def _unknown_key(base: list[str], key: str) -> str:
    parent_path, _, name = key.rpartition(".")
    parent = OmegaConf.select(compose_config(base), parent_path) if parent_path else compose_config(base)
    return _no_such_field(parent_path, name, parent.keys() if isinstance(parent, DictConfig) else [])


def _no_such_field(parent_path: str, name: str, keys: Iterable[Any]) -> str:
    """`optim has no field 'lrr'; did you mean optim.lr? (fields: lr, momentum, weight_decay)`"""
    fields = sorted(str(k) for k in keys if not str(k).startswith("_") and k not in HYDRA_KEYS)
    close = difflib.get_close_matches(name, fields, n=1)
    hint = f"; did you mean {join(parent_path, close[0])}?" if close else ""
    return f"{parent_path or 'the config'} has no field '{name}'{hint} (fields: {', '.join(fields)})"


# ---- the composed task config ----------------------------------------------------------------------------


def check_config(cfg: DictConfig, overrides: Sequence[str] = ()) -> list[str]:
    """Every problem of a composed task config; an empty list means it will run."""
    problems = check_overrides(overrides)
    try:
        resolved = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    except OmegaConfBaseException as error:  # an interpolation that points nowhere
        return [*problems, f"{error.full_key}: {_first_line(error)}"]
    problems += [_missing(cfg, path) for path in sorted(OmegaConf.missing_keys(cfg))]
    if problems:
        return problems
    problems += list(_check_fields(cfg, ""))
    # As written and as resolved: an interpolation must not bring in a target either.
    allowed = registered_targets()
    problems += sorted({*_check_targets(plain(cfg), allowed), *_check_targets(resolved, allowed)})
    if problems:
        return problems
    problems = _check_combinations(cfg)
    if cfg.get("resume") is not None and not problems:
        problems = resume_problems(cfg)
    return problems


def _check_fields(node: DictConfig, path: str) -> Iterator[str]:
    """Fields removed (`~field`), keys the node's dataclass does not declare, and `Annotated` bounds."""
    schema = OmegaConf.get_type(node)
    if isinstance(schema, type) and dataclasses.is_dataclass(schema):
        fields = {f.name: f for f in dataclasses.fields(schema)}
        for unknown in {str(key) for key in node.keys()} - fields.keys():
            yield f"{join(path, unknown)}: {_no_such_field(path, unknown, fields)}"
        for name in sorted(fields.keys() - {str(key) for key in node.keys()} - HYDRA_KEYS):
            if fields[name].init and not name.startswith("_"):
                yield f"{join(path, name)}: removed (~{join(path, name)}), but every run needs it; set a value instead"
        for name, hint in get_type_hints(schema, include_extras=True).items():
            if name in node and get_origin(hint) is Annotated:
                try:
                    value = node[name]
                except OmegaConfBaseException as error:
                    yield f"{join(path, name)}: {_first_line(error)}"
                    continue
                yield from _check_value(join(path, name), value, get_args(hint))
                if Fixed in get_args(hint)[1:]:
                    yield from _check_fixed(join(path, name), value, OmegaConf.structured(schema)[name])
    for key in node.keys():
        child = node._get_node(key)
        # A list of configs, too: `augment=flip_crop`'s transforms (`augment.transforms.0.padding`).
        items: list[tuple[int | None, Any]] = [(None, child)]
        if isinstance(child, ListConfig) and not child._is_interpolation() and not child._is_none():
            items = [(i, child._get_node(i)) for i in range(len(child))]
        for index, item in items:
            if isinstance(item, DictConfig) and not item._is_missing() and not item._is_none():
                where = join(path, str(key) if index is None else f"{key!s}.{index}")
                yield from _check_fields(item, where)


def _check_value(path: str, value: Any, hint_args: tuple[Any, ...]) -> Iterator[str]:
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


def _check_slot_choices(overrides: Sequence[str]) -> list[str]:
    """A slot filled in Python is only replaced by an explicit `slot=option`, never by a preset's choice."""
    hydra = HydraConfig.get()
    primary = ConfigStore.instance().load(f"{hydra.job.config_name}.yaml").node
    filled = {
        group
        for entry in primary.get("defaults", [])
        if isinstance(entry, DictConfig)
        for group, option in entry.items()
        if group in SLOTS and option is None
    }
    chosen = {str(override).partition("=")[0].lstrip("+") for override in overrides}
    return [
        f"{slot}: the config given in Python would be replaced by experiment={hydra.runtime.choices.get('experiment')}'s "
        f"{slot}={hydra.runtime.choices[slot]}; leave MainConfig.{slot} empty, or choose {slot}=<option> as an override"
        for slot in sorted(filled)
        if hydra.runtime.choices.get(slot) is not None and slot not in chosen
    ]


def _check_targets(config: Any, allowed: set[str]) -> Iterator[str]:
    for path, target in targets(config):
        if target not in allowed:
            yield (
                f"{path}={target}: not the target of any registered config; choose an option of the "
                f"group by name, or register a config of your own (see the README)"
            )


# The splits each dataset holds out by a fraction of its images.
HELD_OUT = {
    DigitsConf: ("digits", ("test", "val")),
    CIFAR10Conf: ("cifar10", ("val",)),
    MNISTConf: ("mnist", ("val",)),
}


def _check_combinations(cfg: DictConfig) -> list[str]:
    problems = []
    model_type = OmegaConf.get_type(cfg.model)
    dataset_type = OmegaConf.get_type(cfg.dataset)
    folder = isinstance(dataset_type, type) and issubclass(dataset_type, ImageFolderConf)
    if isinstance(model_type, type) and issubclass(model_type, NetConf):
        shape = list(cfg.model.image_shape)
        if min(shape[1:]) < Net.MIN_IMAGE_SIZE:
            size = f"{Net.MIN_IMAGE_SIZE}x{Net.MIN_IMAGE_SIZE}"
            instead = (
                f"a dataset.image_shape of {size} or more" if folder else "dataset=cifar10, mnist or fake"
            )
            problems.append(
                f"model.image_shape={shape} (from the dataset): model=net needs images of at least "
                f"{size} pixels; choose {instead}, or model=small or large"
            )
    if folder:
        problems += folders.folder_problems(
            cfg.dataset.root, list(cfg.dataset.image_shape), cfg.dataset.val_fraction, cfg.dataset.num_classes
        )
    for conf, (option, held_out) in HELD_OUT.items():
        if isinstance(dataset_type, type) and issubclass(dataset_type, conf):
            fractions = {name: cfg.dataset[f"{name}_fraction"] for name in held_out}
            problems += datasets.split_problems(option, fractions)
    if "root" in cfg.dataset and not cfg.dataset.get("download", False):
        option = getattr(dataset_type, "__name__", "").removesuffix("Conf").lower()
        problems += datasets.missing_files(option, cfg.dataset.root)
    try:
        device = resolve_device(cfg.trainer.device)
    except UserError as error:
        problems.append(str(error))
    else:
        problems += distributed.device_problems(cfg.trainer.devices, device)
        problems += machine.rank_problems(cfg.trainer.devices, device)
    ranks = cfg.trainer.devices * cfg.trainer.nodes
    if cfg.trainer.batch_size < ranks:
        problems.append(
            f"trainer.batch_size={cfg.trainer.batch_size}: less than one image per rank "
            f"({ranks} = trainer.devices x trainer.nodes); the batch size is the global one, over every rank"
        )
    return problems + tracker_problems(cfg.tracker)


# ---- the composed hydra config ---------------------------------------------------------------------------


def _search_problems(written: dict[str, Any]) -> list[str]:
    """A search needs Optuna, and not Hydra's own Optuna sweeper (`search.installed_problems`). A TPE search
    whose trials are all start-up trials samples at random only: not what was asked for."""
    sweeper = written.get("sweeper") or {}
    if isinstance(sweeper, dict) and sweeper.get("_target_") == search.SWEEPER:
        if missing := search.installed_problems():
            return missing
    sampler = sweeper.get("sampler") if isinstance(sweeper, dict) else None
    if not isinstance(sampler, dict) or sampler.get("_target_") != "optuna.samplers.TPESampler":
        return []
    trials, startup = sweeper.get("n_trials"), sampler.get("n_startup_trials")
    if isinstance(trials, int) and isinstance(startup, int) and trials <= startup:
        return [
            f"hydra.sweeper.n_trials={trials}: TPE samples the first hydra.sweeper.sampler.n_startup_trials={startup} "
            f"at random, so it would never choose a trial; run more trials or lower n_startup_trials"
        ]
    return []


def check_hydra(hydra: DictConfig, before_run: bool = True) -> list[str]:
    """The `hydra` part of a job: each target and logging class registered for its part (a callback only
    from registered callbacks, ...), zenexp's guard in place, Hydra's files inside the run directory, no
    override of what Hydra sets itself; `before_run`, also a run directory that is new."""
    written = plain(hydra)  # as written: resolving `hydra.run.dir` would make the directory
    allowed = registered_hydra_references()
    problems = [
        f"{path}={reference}: not named by any registered config of hydra.{_section(path)}; only the configs "
        f"zenexp, its installed plugins and your own stored configs define may run (see the README's threat model)"
        for path, reference in references(written, "hydra")
        if reference not in allowed.get(_section(path), set())
    ]
    problems += [
        f"{line}: Hydra sets hydra.runtime itself, and hydra.searchpath would read configs from elsewhere; "
        f"neither may be overridden"
        for line in written.get("overrides", {}).get("hydra") or []
        if override_key(str(line)).startswith(("hydra.runtime", "hydra.searchpath"))
    ]
    if next(iter((written.get("callbacks") or {}).items()), None) != ("guard", GUARD):
        problems.append(
            "hydra.callbacks.guard: zenexp's guard must stay the first callback; leave hydra.callbacks as it is"
        )
    if (written.get("hydra_logging") or {}).get("zenexp_guard") != GUARD["verdict"]:
        problems.append("hydra.hydra_logging.zenexp_guard: zenexp's guard must stay; leave it as it is")
    problems += _names_in_run_dir(hydra, written) + _log_files(written) + _search_problems(written)
    for section in ("run", "sweep"):
        raw = _written(written, f"{section}.dir")
        if not before_run or raw == _written(DEFAULT_HYDRA, f"{section}.dir"):
            continue
        if "zenexp." in str(raw):
            problems.append(
                f"hydra.{section}.dir={raw}: give a path; zenexp's own resolvers are not for overrides"
            )
        elif section == "sweep" and _continues_sweep(written, Path(str(hydra.sweep.dir))):
            continue  # the sweeper checks that its ledger plans these very jobs
        else:
            problems += _new_dir_problems(f"hydra.{section}.dir", str(hydra[section].dir))
    return problems


# The sweepers that finish a sweep in its own directory, from its ledger (hydra_plugins.zenexp_plugins).
LEDGER_SWEEPERS = {f"hydra_plugins.zenexp_plugins.{name}" for name in ("GridSweeper", "OptunaSearch")}


def _continues_sweep(written: dict[str, Any], sweep_dir: Path) -> bool:
    sweeper = written.get("sweeper") or {}
    target = sweeper.get("_target_") if isinstance(sweeper, dict) else None
    return target in LEDGER_SWEEPERS and (sweep_dir / rundir.SWEEP_FILE).is_file()


def _section(path: str) -> str:
    return path.split(".")[1].split("[")[0]


def _names_in_run_dir(hydra: DictConfig, written: dict[str, Any]) -> list[str]:
    """Settings that name a file or folder inside the run directory stay one plain name; a sweep's job
    folders are numbered, so no two jobs share one."""
    problems = []
    for key in ("output_subdir", "job.name", "sweep.subdir"):
        raw = _written(written, key)
        if raw is None or raw == _written(DEFAULT_HYDRA, key):
            continue
        if key == "sweep.subdir":
            numbered = any(f"${{hydra.job.{part}}}" in str(raw) for part in ("num", "id"))
            value = str(raw).replace("${hydra.job.num}", "0").replace("${hydra.job.id}", "0")
            ok = numbered and "${" not in value and _plain_name(value)
        else:
            value = OmegaConf.select(hydra, key, default=None, throw_on_resolution_failure=False)
            ok = value is not None and _plain_name(str(value))
        if not ok:
            problems.append(
                f"hydra.{key}={raw}: must be one file or folder name inside the run directory"
                + (", numbered with ${hydra.job.num}" if key == "sweep.subdir" else "")
            )
    return problems


def _log_files(written: dict[str, Any]) -> list[str]:
    """Hydra's logging writes only its job log, in the run directory, and only appends to it."""
    problems = []
    for section in ("job_logging", "hydra_logging"):
        handlers = (written.get(section) or {}).get("handlers") or {}
        for name, handler in handlers.items():
            handler = handler if isinstance(handler, dict) else {}
            path = f"hydra.{section}.handlers.{name}"
            filename = handler.get("filename")
            if filename is not None and filename != LOG_FILE:
                problems.append(
                    f"{path}.filename={filename}: Hydra's log is only {LOG_FILE}, in the run directory"
                )
            if handler.get("mode", "a") != "a":
                problems.append(f"{path}.mode={handler['mode']}: logs are only appended to (mode a)")
    return problems


def _written(written: Any, key: str) -> Any:
    for part in key.split("."):
        written = written.get(part) if isinstance(written, dict) else None
    return written


def _plain_name(name: str) -> bool:
    return Path(name).name == name and name not in ("", ".", "..")


def _new_dir_problems(key: str, value: str) -> list[str]:
    """A run or sweep directory named by the user: a path this system takes, new, and not inside a run."""
    if len(value.encode()) > PATH_MAX or any(len(part.encode()) > NAME_MAX for part in Path(value).parts):
        return [
            f"{key}: a path of {len(value)} characters, longer than this system takes; choose a shorter one"
        ]
    path = Path(os.path.abspath(value))  # as Hydra will: `new/..` is the folder above
    if path.is_dir() and any(path.iterdir()):
        return [
            f"{key}={value}: that directory holds files already; a run never writes into another run's "
            f"directory: choose a new one, or continue that run with zenexp resume {value}"
        ]
    inside = next(
        (p for p in path.parents if (p / rundir.RUN_FILE).is_file() or (p / rundir.HYDRA_SUBDIR).is_dir()),
        None,
    )
    if inside is not None:
        return [f"{key}={value}: inside the run directory {inside}; choose a folder outside every run"]
    return []


def _first_line(error: OmegaConfBaseException) -> str:
    """OmegaConf's message without the full_key/object_type lines it appends."""
    return str(error.msg or error).splitlines()[0]
