"""Targets as zenexp stored them before its modules moved into rooms (`zenexp.data.digits` is now
`zenexp.data.datasets.digits`): a run directory or a sweep of that layout resumes, reruns and evaluates as
before, its saved config read in today's names."""

from __future__ import annotations

import re

MOVED = {
    "zenexp.models": "zenexp.run.models",
    "zenexp.data": "zenexp.data.datasets",
    "zenexp.folders": "zenexp.data.folders",
    "zenexp.augment": "zenexp.data.augment",
}
# Targets that left the module the rest of their old module went to.
MOVED_TARGETS = {"zenexp.data.torchvision_dataset": "zenexp.data.vision.torchvision_dataset"}
OLDER = {new: old for old, new in MOVED.items()}
OLDER_TARGETS = {new: old for old, new in MOVED_TARGETS.items()}
TARGET_LINE = re.compile(r"^(\s*(?:- )?_target_: )(zenexp\.[\w.]+)\.(\w+)$", re.M)


def current(target: str) -> str:
    """A stored target in today's layout: `zenexp.models.Net` -> `zenexp.run.models.Net`."""
    return _renamed(target, MOVED_TARGETS, MOVED)


def as_older(config_yaml: str) -> str:
    """A config's YAML with its targets spelled as the older layout stored them (a sweep's ledger hashed that)."""
    return TARGET_LINE.sub(lambda m: m[1] + older(f"{m[2]}.{m[3]}"), config_yaml)


def older(target: str) -> str:
    """A target as the older layout named it: `zenexp.run.models.Net` -> `zenexp.models.Net`."""
    return _renamed(target, OLDER_TARGETS, OLDER)


def _renamed(target: str, targets: dict[str, str], modules: dict[str, str]) -> str:
    """`target` renamed by `targets` if it is one of them, else by the module it is in."""
    if target in targets:
        return targets[target]
    module, _, name = target.rpartition(".")
    return f"{modules.get(module, module)}.{name}"
