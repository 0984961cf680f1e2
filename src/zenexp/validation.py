"""Every check of a config before any work starts, each problem one short line naming the field.

Three layers, cheapest first:
- the overrides as typed: `_target_` and the other underscore keys are not for the command line;
- composing (Hydra and OmegaConf): bad types, unknown keys and unknown options, explained with what exists;
- the composed config: missing values, bounds declared with `Annotated`, unknown keys added with `+`,
  targets that no registered config uses, and combinations that cannot work.
"""

from __future__ import annotations

import dataclasses
import difflib
import operator
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin, get_type_hints

from annotated_types import Ge, GroupedMetadata, Gt, Le, Lt
from hydra import compose, initialize
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import (
    HydraException,
    MissingConfigException,
    OverrideParseException,
)
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from zenexp.checkpoint import CHECKPOINT_DIR, LAST
from zenexp.configs import SLOTS, Fixed, NetConf
from zenexp.errors import UserError
from zenexp.models import Net
from zenexp.provenance import job_overrides
from zenexp.train import resolve_device

CONFIG_NAME = "zenexp"
TARGET_KEYS = ("_target_", "_zen_target")
HYDRA_KEYS = {"defaults", "hydra"}  # MainConfig fields that Hydra reads
BOUNDS: dict[type, tuple[Callable[[Any, Any], bool], str, str]] = {
    Gt: (operator.gt, ">", "gt"),
    Ge: (operator.ge, ">=", "ge"),
    Lt: (operator.lt, "<", "lt"),
    Le: (operator.le, "<=", "le"),
}


# ---- entry points ----------------------------------------------------------------------------------------


def validate_job(cfg: DictConfig) -> None:
    """The task's first step (a zen pre_call), for the CLI and `launch()` alike.

    Hydra has already made the run directory; a job refused here leaves nothing in it, so that folder
    and what Hydra wrote into it are removed again.
    """
    problems = check_config(cfg, job_overrides()) or _check_slot_choices(job_overrides())
    if problems:
        if HydraConfig.initialized():
            _discard_run_dir()
        raise_problems(problems)


def check_point(overrides: Sequence[str]) -> list[str]:
    """Every problem of one job's overrides, found without running anything."""
    problems = check_overrides(overrides)
    if problems:
        return problems
    try:
        cfg = compose_config(overrides)
    except (HydraException, OmegaConfBaseException) as error:
        return explain_compose_error(overrides) or [str(error).splitlines()[0]]
    return check_config(cfg)


def sweep_points(overrides: Sequence[str]) -> list[list[str]]:
    """The jobs a basic-sweeper multirun would launch: `a=1,2 b=x,y` gives four."""
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    return [point for batch in BasicSweeper.split_arguments(parsed, None) for point in batch]


def raise_problems(problems: Sequence[str]) -> None:
    if len(problems) == 1:
        raise UserError(problems[0])
    if problems:
        raise UserError(f"{len(problems)} problems:\n" + "\n".join(f"  {p}" for p in problems))


def _discard_run_dir() -> None:
    """Remove the run directory Hydra just made for a refused job; one that holds more (a run being
    resumed) is left as it is."""
    hydra = HydraConfig.get()
    output_dir = Path(hydra.runtime.output_dir)
    job_log = f"{hydra.job.name}.log"
    if {path.name for path in output_dir.iterdir()} - {hydra.output_subdir, job_log}:
        return
    if hydra.output_subdir:
        shutil.rmtree(output_dir / hydra.output_subdir, ignore_errors=True)
    (output_dir / job_log).unlink(missing_ok=True)
    with suppress(OSError):  # not empty: something else lives there, keep it
        output_dir.rmdir()


# ---- resuming ----------------------------------------------------------------------------------------------

RESUMABLE = {"trainer.epochs", "resume"}  # what may differ between a run and its continuation


def config_changes(run_dir: Path, cfg: DictConfig, allowed: set[str]) -> list[str]:
    """`key: saved -> now` for each resolved value that differs from the run's saved config.yaml."""
    saved = _flatten(OmegaConf.to_container(OmegaConf.load(run_dir / "config.yaml")))
    now = _flatten(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True))
    keys = sorted((saved.keys() | now.keys()) - allowed)
    return [
        f"{key}: {saved.get(key, '(absent)')} -> {now.get(key, '(absent)')}"
        for key in keys
        if saved.get(key) != now.get(key)
    ]


def resume_problems(cfg: DictConfig) -> list[str]:
    """Why `resume=RUN_DIR` cannot continue that run with this config, if it cannot."""
    run_dir = Path(cfg.resume)
    if not (run_dir / CHECKPOINT_DIR / LAST).is_file():
        return [f"resume={cfg.resume}: no checkpoint there ({CHECKPOINT_DIR}/{LAST}); nothing to resume"]
    changes = config_changes(run_dir, cfg, RESUMABLE)
    if changes:
        listed = "\n".join(f"    {change}" for change in changes)
        return [
            f"resume={cfg.resume}: only trainer.epochs may change when resuming, but this differs:\n{listed}\n"
            f"  `zenexp resume {cfg.resume}` reuses the run's own overrides"
        ]
    return []


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        flat: dict[str, Any] = {}
        for key, child in value.items():
            flat |= _flatten(child, f"{prefix}.{key}" if prefix else str(key))
        return flat
    return {prefix: value}


# ---- the overrides as typed ------------------------------------------------------------------------------


def check_overrides(overrides: Sequence[str]) -> list[str]:
    """Refuse overrides that do not parse, and those of `_target_`, `_partial_`, `_zen_target`, ..."""
    parser = OverridesParser.create()
    problems = []
    for line in overrides:
        try:
            (override,) = parser.parse_overrides([line])
        except OverrideParseException:
            problems.append(
                f"{line}: not a valid override; write key=value, and quote a value with special "
                f"characters: 'dataset.root=\"~/data\"'"
            )
            continue
        key = override.key_or_group
        internal = [part for part in key.replace("/", ".").split(".") if part.startswith("_")]
        internal += [name for name in _keys(override.value()) if name.startswith("_")]
        if internal and not key.startswith("hydra"):
            group = key.split(".")[0]
            choose = f"choose with {group}=<option> ({', '.join(options(group))})" if options(group) else ""
            problems.append(
                f"{override.input_line}: {internal[0]} is fixed by the registered configs and cannot be "
                f"overridden; {choose or 'register a config of your own (see the README)'}"
            )
    return problems


def _keys(value: Any) -> Iterator[str]:
    """The keys inside a dict-valued override such as `model={_target_:os.system}`."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield str(key)
            yield from _keys(child)
    elif isinstance(value, list):
        for child in value:
            yield from _keys(child)


def options(group: str) -> list[str]:
    """The registered options of a config group, e.g. ["large", "net", "small"] for "model"."""
    store = ConfigStore.instance()
    if not store.repo.get(group) or not isinstance(store.repo[group], dict):
        return []
    return sorted(name.removesuffix(".yaml") for name in store.list(group))


# ---- composing -------------------------------------------------------------------------------------------


def compose_config(overrides: Sequence[str]) -> DictConfig:
    with initialize(version_base="1.3", config_path=None):
        return compose(CONFIG_NAME, overrides=list(overrides))


def explain_compose_error(overrides: Sequence[str]) -> list[str]:
    """Compose with each override on its own (after the group choices) to say which ones fail and why."""
    lines = [str(o.input_line) for o in OverridesParser.create().parse_overrides(list(overrides))]
    choices = [line for line in lines if options(_key(line))]
    problems = [_compose_problem(choices[:i], choice) for i, choice in enumerate(choices)]
    if not any(problems):
        problems = [_compose_problem(choices, line) for line in lines if line not in choices]
    return [problem for problem in problems if problem]


def _compose_problem(base: list[str], override: str) -> str | None:
    try:
        compose_config([*base, override])
    except MissingConfigException:
        group, _, choice = override.partition("=")
        return f"{override}: there is no {group} '{choice}'; choose one of {', '.join(options(group))}"
    except (HydraException, OmegaConfBaseException) as error:
        cause = error.__cause__
        if isinstance(cause, (ConfigAttributeError, ConfigKeyError)):
            return f"{override}: {_unknown_key(base, _key(override))}"
        if isinstance(cause, OmegaConfBaseException):
            return f"{override}: {_first_line(cause)}"
        return f"{override}: {str(error).splitlines()[0]}"
    return None


def _key(override: str) -> str:
    return override.partition("=")[0].lstrip("+~")


def _unknown_key(base: list[str], key: str) -> str:
    parent_path, _, name = key.rpartition(".")
    parent = OmegaConf.select(compose_config(base), parent_path) if parent_path else compose_config(base)
    return _no_such_field(parent_path, name, parent.keys() if isinstance(parent, DictConfig) else [])


def _no_such_field(parent_path: str, name: str, keys: Iterable[Any]) -> str:
    """`optim has no field 'lrr'; did you mean optim.lr? (fields: lr, momentum, weight_decay)`"""
    fields = sorted(str(k) for k in keys if not str(k).startswith("_") and k not in HYDRA_KEYS)
    close = difflib.get_close_matches(name, fields, n=1)
    hint = f"; did you mean {_join(parent_path, close[0])}?" if close else ""
    return f"{parent_path or 'the config'} has no field '{name}'{hint} (fields: {', '.join(fields)})"


# ---- the composed config ---------------------------------------------------------------------------------


def check_config(cfg: DictConfig, overrides: Sequence[str] = ()) -> list[str]:
    """Every problem of a composed config; an empty list means it will run."""
    problems = check_overrides(overrides)
    try:
        OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    except OmegaConfBaseException as error:  # an interpolation that points nowhere
        return [*problems, f"{error.full_key}: {_first_line(error)}"]
    problems += [
        f"{path} is missing (???): give it a value, e.g. {path}=<{_type_name(cfg, path)}>"
        for path in sorted(OmegaConf.missing_keys(cfg))
    ]
    if problems:
        return problems
    problems += list(_check_fields(cfg, ""))
    problems += list(_check_targets(cfg, registered_targets()))
    if problems:
        return problems
    problems = _check_combinations(cfg)
    if cfg.resume and not problems:
        problems = resume_problems(cfg)
    return problems


def _check_fields(node: DictConfig, path: str) -> Iterator[str]:
    """Bounds from `Annotated` metadata, and keys the node's dataclass does not declare."""
    schema = OmegaConf.get_type(node)
    if isinstance(schema, type) and dataclasses.is_dataclass(schema):
        declared = {f.name for f in dataclasses.fields(schema)}
        for unknown in {str(key) for key in node.keys()} - declared:
            yield f"{_join(path, unknown)}: {_no_such_field(path, unknown, declared)}"
        for name, hint in get_type_hints(schema, include_extras=True).items():
            if name in node and get_origin(hint) is Annotated:
                try:
                    value = node[name]
                except OmegaConfBaseException as error:
                    yield f"{_join(path, name)}: {_first_line(error)}"
                    continue
                yield from _check_bounds(_join(path, name), value, get_args(hint))
                if Fixed in get_args(hint)[1:]:
                    yield from _check_fixed(_join(path, name), value, OmegaConf.structured(schema)[name])
    for key in node.keys():
        child = node._get_node(key)
        if isinstance(child, DictConfig) and not child._is_missing() and not child._is_none():
            yield from _check_fields(child, _join(path, str(key)))


def _check_bounds(path: str, value: Any, hint_args: tuple[Any, ...]) -> Iterator[str]:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    for bound in _bounds(hint_args[1:]):
        check, _, attribute = BOUNDS[type(bound)]
        if not check(value, getattr(bound, attribute)):
            yield f"{path}={value}: expected {_type_word(hint_args[0])} {describe_bounds(hint_args[1:])}"
            return


def _check_fixed(path: str, value: Any, held: Any) -> Iterator[str]:
    """A fact of the data (`Fixed`) must keep the value the dataset's config declares."""
    plain = OmegaConf.to_container(value) if isinstance(value, ListConfig) else value
    expected = OmegaConf.to_container(held) if isinstance(held, ListConfig) else held
    if plain != expected:
        yield f"{path}={plain}: fixed by the data, which holds {expected}; choose another dataset instead"


def _check_slot_choices(overrides: Sequence[str]) -> list[str]:
    """A slot filled in Python is only replaced by an explicit `slot=option`, never by a preset's choice."""
    if not HydraConfig.initialized():
        return []
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


def describe_bounds(metadata: Sequence[Any]) -> str:
    """The bounds in `Annotated` metadata as text, e.g. ">= 0 and < 1"."""
    return " and ".join(
        f"{BOUNDS[type(bound)][1]} {getattr(bound, BOUNDS[type(bound)][2])}" for bound in _bounds(metadata)
    )


def _bounds(metadata: Sequence[Any]) -> Iterator[Any]:
    for item in metadata:
        if isinstance(item, GroupedMetadata):
            yield from _bounds(list(item))
        elif type(item) in BOUNDS:
            yield item


def registered_targets() -> set[str]:
    """Every `_target_` used by a config in Hydra's ConfigStore (Hydra's own aside): what a run may build."""

    def entries(tree: dict[str, Any]) -> Iterator[Any]:
        for name, entry in tree.items():
            if isinstance(entry, dict):
                if name != "hydra":
                    yield from entries(entry)
            else:
                yield entry.node

    return {
        target for node in entries(ConfigStore.instance().repo) for _, target in _targets(_plain(node), "")
    }


def _check_targets(cfg: DictConfig, allowed: set[str]) -> Iterator[str]:
    for path, target in _targets(_plain(cfg), ""):
        if target not in allowed:
            yield (
                f"{path}={target}: not the target of any registered config; choose an option of the "
                f"group by name, or register a config of your own (see the README)"
            )


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=False, throw_on_missing=False)


def _targets(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """(path, target) for each `_target_` and `_zen_target` in a plain container."""
    if isinstance(value, dict):
        for key, child in value.items():
            if key in TARGET_KEYS:
                yield _join(path, key), str(child)
            else:
                yield from _targets(child, _join(path, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _targets(child, f"{path}[{i}]")


def _check_combinations(cfg: DictConfig) -> list[str]:
    problems = []
    model_type = OmegaConf.get_type(cfg.model)
    if isinstance(model_type, type) and issubclass(model_type, NetConf):
        shape = list(cfg.model.image_shape)
        if min(shape[1:]) < Net.MIN_IMAGE_SIZE:
            problems.append(
                f"model.image_shape={shape} (from the dataset): model=net needs images of at least "
                f"{Net.MIN_IMAGE_SIZE}x{Net.MIN_IMAGE_SIZE} pixels; choose dataset=cifar10, mnist or fake, "
                f"or model=small or large"
            )
    try:
        resolve_device(cfg.trainer.device)
    except UserError as error:
        problems.append(str(error))
    return problems


def _first_line(error: OmegaConfBaseException) -> str:
    """OmegaConf's message without the full_key/object_type lines it appends."""
    return str(error.msg or error).splitlines()[0]


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _type_word(annotation: Any) -> str:
    names = {int: "an integer", float: "a number"}
    return next((names[t] for t in (annotation, *get_args(annotation)) if t in names), "a value")


def _type_name(cfg: DictConfig, path: str) -> str:
    parent_path, _, name = path.rpartition(".")
    parent = OmegaConf.select(cfg, parent_path) if parent_path else cfg
    schema = OmegaConf.get_type(parent) if isinstance(parent, DictConfig) else None
    if isinstance(schema, type) and dataclasses.is_dataclass(schema):
        hint = get_type_hints(schema).get(name)  # without extras: Annotated[float, ...] is float
        if hint is not None:
            return getattr(hint, "__name__", str(hint))
    return "value"
