"""`zenexp --help`: the groups and their options, and every field with its type, bounds, default and
description, all read from the configs themselves."""

from __future__ import annotations

import json
from typing import Annotated, Any, cast, get_args, get_origin, get_type_hints

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf
from typing_extensions import Doc

from zenexp import compat
from zenexp.configs import SLOTS, Fixed, MainConfig
from zenexp.configs.schema import HYDRA_KEYS, describe_bounds, options, words

GROUPS = ("model", "dataset", "optim", "scheduler", "augment")
PRESETS = "experiment"
USAGE = """\
usage: zenexp [group=option ...] [field=value ...]   train and record one run
       zenexp -m field=a,b [...]                     a sweep: one job per combination
       zenexp check [-m] [overrides ...]             check every job of a run or sweep; run nothing
       zenexp resume RUN_DIR [trainer.epochs=N]      continue a run from its last checkpoint
       zenexp rerun RUN_DIR                          run a recorded run again; compare its metrics
       zenexp compare DIR... [--sort M] [--png F]    runs or sweeps side by side: a table and curves
       zenexp eval RUN_DIR [--checkpoint best|last]  the saved model on the test split: per class, confusion
       zenexp --cfg job [overrides ...]              print the composed config; run nothing
       zenexp --hydra-help                           Hydra's own options
"""


def help_text() -> str:
    """Groups with their options, and every field with its type, default and description from the code."""
    defaults = {group: SLOTS[group] for group in GROUPS}
    sections: list[tuple[str, list[tuple[str, str, str, str]]]] = []
    for group in GROUPS:
        for name in sorted(options(group), key=lambda name: name != defaults[group]):
            node = ConfigStore.instance().load(f"{group}/{name}.yaml").node
            sections.append((f"{group}={name}: {_summary(OmegaConf.get_type(node))}", _fields(node, group)))
    for name in options(PRESETS):
        node = ConfigStore.instance().load(f"{PRESETS}/{name}.yaml").node
        sections.append((f"{PRESETS}={name}: {_preset_summary(node)}", []))
    main_node = OmegaConf.structured(MainConfig)
    for name in ("trainer", "tracker"):
        sections.append(
            (f"{name}: {_summary(OmegaConf.get_type(main_node[name]))}", _fields(main_node[name], name))
        )
    sections.append(("top level:", [row for row in _fields(main_node, "") if row[0] == "seed"]))

    widths = [max(len(row[i]) for _, rows in sections for row in rows) for i in range(3)]
    lines = [USAGE, "groups (the default first):"]
    lines += [f"  {g:<10} {' | '.join(sorted(options(g), key=lambda n: n != defaults[g]))}" for g in GROUPS]
    lines.append(f"  {PRESETS:<10} {' | '.join(options(PRESETS))} (presets; none by default)")
    for title, rows in sections:
        lines += ["", title]
        for path, kind, default, doc in rows:
            lines.append(
                f"  {path:<{widths[0]}}  {kind:<{widths[1]}}  {default:<{widths[2]}}  {doc}".rstrip()
            )
    return "\n".join(lines)


def _summary(schema: Any) -> str:
    return str((schema.__doc__ or "").strip().splitlines()[0])


def _fields(node: DictConfig, prefix: str) -> list[tuple[str, str, str, str]]:
    """(path, type, default, description) of each field a user may set."""
    values = OmegaConf.to_container(node, resolve=False, enum_to_str=True)
    assert isinstance(values, dict)
    rows: list[tuple[str, str, str, str]] = []
    for name, hint in get_type_hints(OmegaConf.get_type(node), include_extras=True).items():
        if name.startswith("_") or name in HYDRA_KEYS:
            continue
        base, *extras = get_args(hint) if get_origin(hint) is Annotated else (hint,)
        doc = next((extra.documentation for extra in extras if isinstance(extra, Doc)), "")
        value = values.get(name)
        default = value if isinstance(value, str) else json.dumps(value)
        path = f"{prefix}.{name}" if prefix else name
        if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
            for index in range(len(value)):  # a list of configs: each one's fields
                rows += _fields(cast(DictConfig, compat.child_node(node[name], index)), f"{path}.{index}")
        elif Fixed in extras:
            rows.append((path, "fixed", default, "what the dataset holds; the models read it"))
        else:
            if words(extras):  # `int | str`, the str one of the words: shown as `int ... or auto`
                base = next(t for t in get_args(base) if t is not str)
            rows.append((path, f"{_type_label(base)} {describe_bounds(extras)}".strip(), default, doc))
    return rows


def _preset_summary(node: DictConfig) -> str:
    """`dataset=cifar10 model=net optim=sgd trainer.epochs=2`: a preset's choices and the values it sets
    that differ from their configs' defaults."""
    choices = [
        f"{str(group).removeprefix('override /')}={option}"
        for entry in node.get("defaults", [])
        if isinstance(entry, DictConfig)
        for group, option in entry.items()
    ]
    values = OmegaConf.masked_copy(node, [str(key) for key in node if key != "defaults"])
    settings = [f"{path}={value}" for path, value in _changed(values, "")]
    return " ".join(choices + settings)


def _changed(node: Any, path: str) -> list[tuple[str, Any]]:
    schema = OmegaConf.get_type(node)
    defaults = OmegaConf.structured(schema) if schema is not None and schema is not dict else {}
    changed = []
    for key in node:
        here = f"{path}.{key}" if path else str(key)
        value = node[key]
        if isinstance(value, DictConfig):
            changed += _changed(value, here)
        elif not str(key).startswith("_") and (key not in defaults or defaults[key] != value):
            changed.append((here, value))
    return changed


def _type_label(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")
