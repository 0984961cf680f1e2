"""What the store holds: the options of a group, the targets a run may build, and the bounds and types
declared with `Annotated`. Read by the checks and by `--help`."""

from __future__ import annotations

import dataclasses
import functools
import operator
from collections.abc import Callable, Iterator, Sequence
from importlib import resources
from typing import Any, get_args, get_type_hints

from annotated_types import Ge, GroupedMetadata, Gt, Le, Lt
from hydra import compose, initialize
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.types import Override
from omegaconf import DictConfig, OmegaConf

from zenexp.configs import Words

CONFIG_NAME = "zenexp"
HYDRA_KEYS = {"defaults", "hydra"}  # MainConfig fields that Hydra reads
TARGET_KEYS = ("_target_", "_zen_target")
# What Python's logging config imports and calls: a handler's `class`, a factory `()`, an `ext://` value.
LOGGING_KEYS = ("class", "()")
# The parts of Hydra's config that name code to build or import.
HYDRA_SECTIONS = ("callbacks", "launcher", "sweeper", "job_logging", "hydra_logging")
BOUNDS: dict[type, tuple[Callable[[Any, Any], bool], str, str]] = {
    Gt: (operator.gt, ">", "gt"),
    Ge: (operator.ge, ">=", "ge"),
    Lt: (operator.lt, "<", "lt"),
    Le: (operator.le, "<=", "le"),
}


def compose_config(overrides: Sequence[str], with_hydra: bool = False) -> DictConfig:
    """The config Hydra composes from zenexp's store and `overrides`; nothing runs."""
    with initialize(version_base="1.3", config_path=None):
        return compose(CONFIG_NAME, overrides=list(overrides), return_hydra_config=with_hydra)


def override_key(line: str) -> str:
    """The key or group an override line sets, without its prefix: `+trainer.epochs=3` -> `trainer.epochs`."""
    return line.partition("=")[0].lstrip("+~")


def is_group_choice(override: Override) -> bool:
    """What Hydra reads as choosing a config (`model=large`, `hydra/launcher=joblib`), not setting a value."""
    key = override.key_or_group
    is_group = "/" in key or isinstance(ConfigStore.instance().repo.get(key), dict)
    return override.package is not None or (is_group and not isinstance(override.value(), dict))


def options(group: str) -> list[str]:
    """The registered options of a config group, e.g. ["large", "net", "small"] for "model"."""
    try:
        names = ConfigStore.instance().list(group)
    except OSError:  # no such group
        return []
    return sorted(name.removesuffix(".yaml") for name in names if name.endswith(".yaml"))


# ---- targets: the allowlist --------------------------------------------------------------------------------


def registered_targets() -> set[str]:
    """Every `_target_` of a config in the store outside Hydra's own groups: what a task may build."""
    repo = ConfigStore.instance().repo
    return {
        target
        for node in _nodes({k: v for k, v in repo.items() if k != "hydra"})
        for _, target in targets(node)
    }


def registered_hydra_references() -> dict[str, set[str]]:
    """For each part of Hydra's config that names code (`HYDRA_SECTIONS`), the targets and logging
    references (`class`, `()`, `ext://...`) that registered configs give that part: the store's options
    of Hydra's group (the installed launcher and sweeper plugins register theirs), Hydra's own packaged
    configs (basic launcher and sweeper, logging), and the `hydra` settings of the stored primary configs
    (zenexp's callbacks). A callback may only be a registered callback, a logging class only a registered
    logging class. Call it after Hydra has been initialised: plugins register their configs then."""
    repo = ConfigStore.instance().repo
    hydra_groups = repo.get("hydra", {})
    primaries = [
        node for node in _nodes({k: v for k, v in repo.items() if k != "hydra"}) if isinstance(node, dict)
    ]
    allowed: dict[str, set[str]] = {}
    for section in HYDRA_SECTIONS:
        group = hydra_groups.get(section)
        nodes = list(_nodes(group)) if isinstance(group, dict) else []
        nodes += [(primary.get("hydra") or {}).get(section) for primary in primaries]
        allowed[section] = {ref for node in nodes for _, ref in references(node)} | _hydra_package_references(
            section
        )
    return allowed


@functools.cache
def _hydra_package_references(section: str) -> frozenset[str]:
    folder = resources.files("hydra.conf") / "hydra" / section
    if not folder.is_dir():
        return frozenset()
    configs = [
        plain(OmegaConf.create(entry.read_text()))
        for entry in folder.iterdir()
        if entry.name.endswith(".yaml")
    ]
    return frozenset(ref for config in configs for _, ref in references(config))


def _nodes(tree: dict[str, Any]) -> Iterator[Any]:
    for entry in tree.values():
        if isinstance(entry, dict):
            yield from _nodes(entry)
        else:
            yield plain(entry.node)


def plain(node: Any) -> Any:
    """A config as plain containers, interpolations left as written (nothing is resolved or run)."""
    if OmegaConf.is_config(node):
        return OmegaConf.to_container(node, resolve=False, throw_on_missing=False)
    return node


def targets(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(path, target) for each `_target_` and `_zen_target` in a plain container."""
    return ((p, ref) for p, key, ref in _walk(value, path) if key in TARGET_KEYS)


def references(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(path, reference) for everything in a plain container that names code to import or call."""
    return (
        (p, ref)
        for p, key, ref in _walk(value, path)
        if key in (*TARGET_KEYS, *LOGGING_KEYS) or ref.startswith("ext://")
    )


def _walk(value: Any, path: str) -> Iterator[tuple[str, str, str]]:
    if isinstance(value, dict):
        for key, child in value.items():
            if isinstance(child, (dict, list)):
                yield from _walk(child, join(path, key))
            elif isinstance(child, str):
                yield join(path, key), str(key), child
            elif str(key) in (*TARGET_KEYS, *LOGGING_KEYS) and child is not None:
                yield join(path, key), str(key), str(child)
    elif isinstance(value, list):
        for i, child in enumerate(value):
            if isinstance(child, (dict, list)):
                yield from _walk(child, f"{path}[{i}]")
            elif isinstance(child, str):
                yield f"{path}[{i}]", "", child


# ---- fields: bounds and types ------------------------------------------------------------------------------


def describe_bounds(metadata: Sequence[Any]) -> str:
    """The bounds in `Annotated` metadata as text, e.g. ">= 0 and < 1", and the words the field also takes
    (">= 0 and <= 1024 or auto")."""
    described = " and ".join(
        f"{BOUNDS[type(bound)][1]} {getattr(bound, BOUNDS[type(bound)][2])}" for bound in bounds(metadata)
    )
    return described + "".join(f" or {word}" for word in words(metadata))


def words(metadata: Sequence[Any]) -> tuple[str, ...]:
    """The words a number field also takes (`Words` in its `Annotated` metadata)."""
    return next((item.allowed for item in metadata if isinstance(item, Words)), ())


def bounds(metadata: Sequence[Any]) -> Iterator[Any]:
    for item in metadata:
        if isinstance(item, GroupedMetadata):
            yield from bounds(list(item))
        elif type(item) in BOUNDS:
            yield item


def type_word(annotation: Any) -> str:
    names = {int: "an integer", float: "a number"}
    return next((names[t] for t in (annotation, *get_args(annotation)) if t in names), "a value")


def type_name(cfg: DictConfig, path: str) -> str:
    """The declared type of the field at `path`, e.g. "float", for messages."""
    parent_path, _, name = path.rpartition(".")
    parent = OmegaConf.select(cfg, parent_path) if parent_path else cfg
    schema = OmegaConf.get_type(parent) if isinstance(parent, DictConfig) else None
    if isinstance(schema, type) and dataclasses.is_dataclass(schema):
        hint = get_type_hints(schema).get(name)  # without extras: Annotated[float, ...] is float
        if hint is not None:
            return getattr(hint, "__name__", str(hint))
    return "value"


def join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)
