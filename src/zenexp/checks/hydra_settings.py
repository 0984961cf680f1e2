"""The composed `hydra` config: every target and logging class a registered one (the allowlist), zenexp's
guard in place, Hydra's files inside the run directory, a run directory that is new, and a search that can
run."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from zenexp.configs import GUARD, MainConfig
from zenexp.configs.schema import override_key, plain, references, registered_hydra_references
from zenexp.run import rundir
from zenexp.sweep import search

NAME_MAX, PATH_MAX = 255, 4096


LOG_FILE = "${hydra.runtime.output_dir}/${hydra.job.name}.log"  # Hydra's own job log


# zenexp's own Hydra settings (run and sweep directories, output_subdir, job name) as written, and
# Hydra's numbered job folders: what a job's `hydra` part holds unless an override changed it.
DEFAULT_HYDRA: dict[str, Any] = MainConfig().hydra


DEFAULT_HYDRA["sweep"]["subdir"] = "${hydra.job.num}"


def search_problems(written: dict[str, Any]) -> list[str]:
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
        f"zenexp, its installed plugins and your own stored configs define may run (see docs/security.md)"
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
    problems += _names_in_run_dir(hydra, written) + _log_files(written) + search_problems(written)
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
