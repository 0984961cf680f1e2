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
OLDER = {new: old for old, new in MOVED.items()}
TARGET_LINE = re.compile(r"^(\s*(?:- )?_target_: )(zenexp\.[\w.]+)\.(\w+)$", re.M)


def current(target: str) -> str:
    """A stored target in today's layout: `zenexp.models.Net` -> `zenexp.run.models.Net`."""
    module, _, name = target.rpartition(".")
    return f"{MOVED.get(module, module)}.{name}"


def as_older(config_yaml: str) -> str:
    """A config's YAML with its targets spelled as the older layout stored them (a sweep's ledger hashed that)."""
    return TARGET_LINE.sub(lambda m: f"{m[1]}{OLDER.get(m[2], m[2])}.{m[3]}", config_yaml)
