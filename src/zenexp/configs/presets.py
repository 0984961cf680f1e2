"""Experiment presets: group options by name, with typed configs merged on top (`experiment=lesson`)."""

from __future__ import annotations

from typing import Any

# ---- experiment presets ---------------------------------------------------------------------------------


def preset(*, dataset: str, model: str, optim: str, values: dict[str, Any] | None = None) -> dict[str, Any]:
    """An `experiment` preset: the group options by name, and typed configs merged on top of them."""
    choices = [
        {f"override /{group}": option}
        for group, option in (("dataset", dataset), ("model", model), ("optim", optim))
    ]
    return {"defaults": ["_self_", *choices], **(values or {})}
