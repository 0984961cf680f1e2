"""What SwanLab is given: tracker settings it would refuse (checked before a run), the config as it shows it,
and names within its limits."""

from __future__ import annotations

import re
from typing import Any

from omegaconf import DictConfig, OmegaConf

from zenexp.configs import TrackerMode

# SwanLab's own limits (swanlab/sdk/internal/pkg/constraints: ProjectName, ExperimentName, Description, Tags).
PROJECT_NAME = re.compile(r"[0-9a-zA-Z_\-+.]{1,100}")
NAME_MAX, DESCRIPTION_MAX, TAG_MAX, TAGS_MAX = 512, 1024, 512, 30


def tracker_problems(tracker: DictConfig) -> list[str]:
    """Settings SwanLab would refuse, found before the run (SwanLab itself would only warn, and not record)."""
    if tracker.mode is TrackerMode.disabled:
        return []
    problems = []
    if not PROJECT_NAME.fullmatch(tracker.project):
        problems.append(
            f"tracker.project={tracker.project}: SwanLab takes 1 to 100 letters, digits and _ - + . only"
        )
    name = tracker.experiment_name
    if name is not None and not 1 <= len(name) <= NAME_MAX:
        problems.append(f"tracker.experiment_name: {len(name)} characters; SwanLab takes 1 to {NAME_MAX}")
    if tracker.description is not None and len(tracker.description) > DESCRIPTION_MAX:
        problems.append(
            f"tracker.description: {len(tracker.description)} characters; SwanLab takes up to {DESCRIPTION_MAX}"
        )
    if len(tracker.tags) > TAGS_MAX or any(len(str(tag)) > TAG_MAX for tag in tracker.tags):
        problems.append(
            f"tracker.tags: SwanLab takes up to {TAGS_MAX} tags of up to {TAG_MAX} characters each"
        )
    return problems


def readable_config(config: DictConfig) -> dict[str, Any]:
    """The config as SwanLab shows it best: one field per value (`optim.lr`), each group's choice by name
    (`model: small`), and none of the `_target_` / `_partial_` keys that say how objects are built."""
    from hydra.core.hydra_config import HydraConfig

    plain = OmegaConf.to_container(config, resolve=True, enum_to_str=True)
    fields: dict[str, Any] = {}

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for key, child in value.items():
                if not str(key).startswith("_"):
                    walk(child, f"{path}.{key}" if path else str(key))
        else:
            fields[path] = value

    walk(plain, "")
    choices = HydraConfig.get().runtime.choices if HydraConfig.initialized() else {}
    for group in ("dataset", "model", "optim", "scheduler", "augment", "experiment"):
        node = plain.get(group) if isinstance(plain, dict) else None
        built = node.get("_target_") if isinstance(node, dict) else None  # a slot filled in Python
        if choices.get(group) is not None or built:
            fields[group] = choices.get(group) or str(built).rpartition(".")[2]
    return dict(sorted(fields.items()))


def shorten(name: str, limit: int = NAME_MAX) -> str:
    """A name SwanLab takes: a long default name (from many overrides) keeps its start and end."""
    if len(name) <= limit:
        return name
    keep = (limit - 3) // 2
    return f"{name[:keep]}...{name[-keep:]}"
