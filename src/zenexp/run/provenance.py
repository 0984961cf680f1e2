"""`run.json`: what a run needs to be understood and repeated later: overrides, versions, git commit."""

from __future__ import annotations

import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

from zenexp.configs import ZENEXP, usercode
from zenexp.errors import UserError
from zenexp.run.rundir import RUN_FILE, read_json, write_json

MAX_THREADS = 1024  # the most torch CPU threads a run may ask for


def job_overrides() -> list[str]:
    """The running Hydra job's overrides as typed (an override may hold an interpolation: not resolved)."""
    if not HydraConfig.initialized():
        return []
    overrides = OmegaConf.to_container(HydraConfig.get().overrides.task, resolve=False)
    return [str(override) for override in overrides] if isinstance(overrides, list) else []


def git_commit(folder: Path) -> dict[str, Any] | None:
    """The commit checked out in `folder`'s git repository and whether files differ from it, if any."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=folder, capture_output=True, text=True, timeout=10, check=True
        )
        return done.stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}
    except (OSError, subprocess.SubprocessError):
        return None


def built_in_python() -> bool:
    """Whether the running job's primary config is not zenexp's stored `MainConfig()` but one a user built
    in Python (a filled slot, another seed, ...): then its overrides alone do not repeat it."""
    store = ConfigStore.instance()
    primary = store.load(f"{HydraConfig.get().job.config_name}.yaml").node
    return OmegaConf.to_yaml(primary) != OmegaConf.to_yaml(store.load("zenexp.yaml").node)


def registered_by() -> dict[str, str]:
    """`{"model=tiny": "my_models", "model=wide": "/home/me/myexp.py"}`: for each chosen option not shipped
    with zenexp, the module of the user's or the script that registered it (`usercode.origin`), which a later
    rerun, resume or eval has to run through to find the option again."""
    store, origins = ConfigStore.instance(), {}
    for group, option in HydraConfig.get().runtime.choices.items():
        if option is None or group.startswith("hydra") or group not in store.repo:
            continue
        stored = store.load(f"{group}/{option}.yaml")
        if stored.provider != ZENEXP:
            origins[f"{group}={option}"] = usercode.origin(stored.node)
    return origins


def write_run_file(output_dir: Path, overrides: list[str], threads: int) -> None:
    """Start the run's record; exclusive: a second run can never take over a run directory.

    `threads`, torch's CPU thread count, is part of the experiment: sums are split across threads, so
    another count gives other numbers (`rerun` and `resume` use the recorded one)."""
    info = {
        "overrides": overrides,
        "built_in_python": built_in_python(),
        "registered_by": registered_by(),
        "command": sys.argv,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": {
            "zenexp": version("zenexp"),
            "torch": version("torch"),
            "python": platform.python_version(),
        },
        "platform": platform.platform(),
        "git": git_commit(Path.cwd()),
        "threads": threads,
        "resumed": [],
    }
    write_json(output_dir / RUN_FILE, info, exclusive=True)


def note_resume(output_dir: Path, step: int, overrides: list[str]) -> None:
    info = read_run_file(output_dir)
    time = datetime.now(UTC).isoformat(timespec="seconds")
    resumed = info["resumed"] if isinstance(info.get("resumed"), list) else []
    info["resumed"] = [*resumed, {"at_step": step, "time": time, "overrides": overrides}]
    write_json(output_dir / RUN_FILE, info)


def recorded_threads(output_dir: Path) -> int | None:
    """The thread count a run recorded, if it did (older runs did not); a file from elsewhere may not ask for
    more than `MAX_THREADS`."""
    threads = read_run_file(output_dir).get("threads")
    if threads is None:
        return None
    if not isinstance(threads, int) or isinstance(threads, bool) or not 1 <= threads <= MAX_THREADS:
        raise UserError(
            f"{output_dir / RUN_FILE}: threads={threads!r} is not a thread count (1 to {MAX_THREADS}); "
            f"the file is damaged"
        )
    return threads


def read_run_file(output_dir: Path) -> dict[str, Any]:
    return read_json(output_dir / RUN_FILE)
