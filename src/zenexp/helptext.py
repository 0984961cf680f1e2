"""`zenexp --help`: the groups and their options, and every field with its type, bounds, default and
description, all read from the configs themselves."""

from __future__ import annotations

import json
from typing import Annotated, Any, get_args, get_origin, get_type_hints

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf
from typing_extensions import Doc

from zenexp.configs import MainConfig
from zenexp.validation import HYDRA_KEYS, describe_bounds, options

GROUPS = ("model", "dataset", "optim")
USAGE = """\
usage: zenexp [group=option ...] [field=value ...]   train and record one run
       zenexp -m field=a,b [...]                     a sweep: one job per combination
       zenexp check [-m] [overrides ...]             check every job of a run or sweep; run nothing
       zenexp resume RUN_DIR [trainer.epochs=N]      continue a run from its last checkpoint
       zenexp rerun RUN_DIR                          run a recorded run again; compare its metrics
       zenexp compare DIR... [--sort M] [--png F]    runs or sweeps side by side: a table and curves
       zenexp --cfg job [overrides ...]              print the composed config; run nothing
       zenexp --hydra-help                           Hydra's own options
"""


def help_text() -> str:
    """Groups with their options, and every field with its type, default and description from the code."""
    defaults = {
        group: choice
        for item in MainConfig().defaults
        if isinstance(item, dict)
        for group, choice in item.items()
    }
    sections: list[tuple[str, list[tuple[str, str, str, str]]]] = []
    for group in GROUPS:
        for name in sorted(options(group), key=lambda name: name != defaults[group]):
            node = ConfigStore.instance().load(f"{group}/{name}.yaml").node
            sections.append((f"{group}={name}: {_summary(OmegaConf.get_type(node))}", _fields(node, group)))
    main_node = OmegaConf.structured(MainConfig)
    for name in ("trainer", "tracker"):
        sections.append(
            (f"{name}: {_summary(OmegaConf.get_type(main_node[name]))}", _fields(main_node[name], name))
        )
    sections.append(("top level:", [row for row in _fields(main_node, "") if row[0] == "seed"]))

    widths = [max(len(row[i]) for _, rows in sections for row in rows) for i in range(3)]
    lines = [USAGE, "groups (the default first):"]
    lines += [f"  {g:<8} {' | '.join(sorted(options(g), key=lambda n: n != defaults[g]))}" for g in GROUPS]
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
    fixed = values.get("_zen_exclude", [])  # zen_meta: facts of the data, read by the models
    rows: list[tuple[str, str, str, str]] = []
    for name, hint in get_type_hints(OmegaConf.get_type(node), include_extras=True).items():
        if name.startswith("_") or name in HYDRA_KEYS:
            continue
        base, *extras = get_args(hint) if get_origin(hint) is Annotated else (hint,)
        doc = next((extra.documentation for extra in extras if isinstance(extra, Doc)), "")
        value = values.get(name)
        default = value if isinstance(value, str) else json.dumps(value)
        path = f"{prefix}.{name}" if prefix else name
        if name in fixed:
            rows.append((path, "fixed", default, "what the dataset holds; the models read it"))
        else:
            rows.append((path, f"{_type_label(base)} {describe_bounds(extras)}".strip(), default, doc))
    return rows


def _type_label(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")
