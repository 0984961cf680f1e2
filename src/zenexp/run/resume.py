"""Continuing and repeating a recorded run: what may change between a run and its continuation, and what a
run directory's saved files may ask for (a shared run directory is input like any other)."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import OverrideParseException
from omegaconf import DictConfig, OmegaConf

from zenexp.configs import NoAugmentConf, add_to_hydra_store
from zenexp.configs.schema import compose_config, options, override_key
from zenexp.configs.usercode import not_registered, registration
from zenexp.errors import UserError
from zenexp.run import checkpoint, layout, rundir
from zenexp.run.provenance import read_run_file, recorded_threads

# What may differ between a run and its continuation: how long it trains, and how its images are read.
RESUMABLE = {"trainer.epochs", "resume", "trainer.loader_workers", "dataset.in_memory"}
THREADS = "trainer.num_threads"
CHOSEN_HERE = (0, "auto")  # thread counts the machine decides: a run's continuation takes the recorded count
# Settings added since runs were first recorded, with the value an older run ran with.
ADDED = {
    "trainer.devices": 1,
    "trainer.nodes": 1,
    "trainer.loader_workers": "auto",
    "augment._target_": NoAugmentConf._target_,
}


def resume_problems(cfg: DictConfig) -> list[str]:
    """Why `resume=RUN_DIR` cannot continue that run with this config, if it cannot."""
    if not str(cfg.resume).strip():
        return [
            "resume= is empty: give the run directory to continue, e.g. zenexp resume outputs/<date>/<time>"
        ]
    run_dir = Path(cfg.resume)
    last = run_dir / rundir.CHECKPOINT_DIR / rundir.LAST
    if not last.is_file():
        return [
            f"resume={cfg.resume}: no checkpoint there ({rundir.CHECKPOINT_DIR}/{rundir.LAST}); nothing to resume"
        ]
    try:
        changes = config_changes(run_dir, cfg, RESUMABLE)
        position = read_plan(run_dir).position
    except UserError as error:
        return [f"resume={cfg.resume}: {error}"]
    epochs, reached = cfg.trainer.epochs, position["epoch"] - 1
    if epochs < reached or (epochs < position["epoch"] and position["step_in_epoch"] > 0):
        trained = f"{reached} epochs" + (" and part of one" if position["step_in_epoch"] else "")
        return [
            f"resume={cfg.resume}: trainer.epochs={epochs}, but the run has trained {trained} already; "
            f"give trainer.epochs={reached + (1 if position['step_in_epoch'] else 0)} or more"
        ]
    if position["stopped_early"] and epochs != saved_config(run_dir).get("trainer.epochs"):
        return [
            f"resume={cfg.resume}: the run stopped early after epoch {position['epoch'] - 1} (validation accuracy "
            f"had stopped improving), so more epochs would train nothing; start a new run instead"
        ]
    if changes:
        listed = "\n".join(f"    {change}" for change in changes)
        return [
            f"resume={cfg.resume}: only trainer.epochs (and how images are read) may change when resuming, but this differs:\n{listed}\n"
            f"  `zenexp resume {cfg.resume}` reuses the run's own overrides"
        ]
    return []


FileIdentity = tuple[int, int, int] | None  # inode, mtime, size: a checkpoint is renamed over, never edited


@dataclass
class ResumePlan:
    """A run to continue, read and checked once: its last checkpoint (where training continues from) and its
    kept model (best.pt), as the files were (`files`). The checks read it (`read_plan`); the task loads it,
    then `release`s the tensors."""

    run_dir: Path
    files: tuple[FileIdentity, FileIdentity]
    last: dict[str, Any] | None  # None once released
    kept: dict[str, Any] | None  # None before an epoch has finished, and once released

    @property
    def position(self) -> dict[str, Any]:
        """Where the last checkpoint stands (read before the plan is released)."""
        assert self.last is not None, "a released plan holds no checkpoint"
        return cast(dict[str, Any], self.last["position"])

    def unchanged(self) -> bool:
        """Whether the checkpoints are still those read (another process may have written since)."""
        return self.files == _identities(self.run_dir)

    def release(self) -> None:
        """Drop the checkpoints' tensors, here and in the cache: whoever still holds the plan holds no copy
        of the model and optimizer."""
        self.last = self.kept = None
        _read_plan.cache_clear()


def read_plan(run_dir: Path) -> ResumePlan:
    """The run's `ResumePlan`, read once for as long as its checkpoint files stay as they are: a resume's
    checks (the command line's, Hydra's guard, the job's own) and its task share one reading."""
    return _read_plan(run_dir, *_identities(run_dir))


@functools.lru_cache(maxsize=1)
def _read_plan(run_dir: Path, last_id: FileIdentity, best_id: FileIdentity) -> ResumePlan:
    folder = run_dir / rundir.CHECKPOINT_DIR
    last = checkpoint.read(folder / rundir.LAST)
    kept = checkpoint.kept_model(folder, last["position"])
    return ResumePlan(run_dir, (last_id, best_id), last, kept)


def _identities(run_dir: Path) -> tuple[FileIdentity, FileIdentity]:
    folder = run_dir / rundir.CHECKPOINT_DIR
    return _identity(folder / rundir.LAST), _identity(folder / rundir.BEST)


def _identity(path: Path) -> FileIdentity:
    """What changes when a file is written again (a new file is renamed over it: another inode)."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return (stat.st_ino, stat.st_mtime_ns, stat.st_size)


def config_changes(run_dir: Path, cfg: DictConfig, allowed: set[str]) -> list[str]:
    """`key: saved -> now` for each resolved value that differs from the run's saved config.yaml."""
    saved = saved_config(run_dir)
    now = flatten(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True))
    if now.get(THREADS) in CHOSEN_HERE and cfg.get("resume"):  # a resumed run takes its recorded count
        now[THREADS] = saved.get(THREADS)
    keys = sorted((saved.keys() | now.keys()) - allowed)
    return [
        f"{key}: {saved.get(key, '(absent)')} -> {now.get(key, '(absent)')}"
        for key in keys
        if saved.get(key) != now.get(key)
    ]


def saved_config(run_dir: Path) -> dict[str, Any]:
    """The run's resolved config, flat, its targets in today's layout, with the thread count it ran with where the machine chose it
    (`trainer.num_threads=auto` or 0, recorded in run.json)."""
    saved = ADDED | flatten(OmegaConf.to_container(rundir.read_yaml(run_dir / rundir.CONFIG_FILE)))
    saved |= {key: layout.current(str(value)) for key, value in saved.items() if key.endswith("_target_")}
    if saved.get(THREADS) in CHOSEN_HERE:
        saved[THREADS] = recorded_threads(run_dir) or saved[THREADS]
    return saved


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """`{"optim.lr": 0.1, ...}` from nested mappings."""
    if isinstance(value, Mapping):
        flat: dict[str, Any] = {}
        for key, child in value.items():
            flat |= flatten(child, f"{prefix}.{key}" if prefix else str(key))
        return flat
    return {prefix: value}


def saved_overrides(run_dir: Path, command: str) -> list[str]:
    """The overrides the run last ran with (those of its latest resume, if any), `resume=` aside, for `command`
    (rerun, resume or eval: named in the one line that says where to run it when an option is not registered).

    A run directory may come from someone else: its overrides are task overrides only (zenexp never saves
    Hydra's own), so any `hydra` one is refused here; the rest go through every check like typed ones."""
    add_to_hydra_store()  # configs a user's module stored since zenexp was imported
    if not (run_dir / rundir.RUN_FILE).is_file():
        raise UserError(f"{run_dir}: not a zenexp run directory (no {rundir.RUN_FILE})")
    info = read_run_file(run_dir)
    if info.get("built_in_python"):
        raise UserError(
            f"{run_dir} was started from a MainConfig built in Python, which its overrides alone do not repeat; "
            f"launch the same config again (to continue it, with overrides=['resume={run_dir}'])"
        )
    registered_by = info.get("registered_by") or {}
    if not isinstance(registered_by, dict):
        raise UserError(
            f"{run_dir / rundir.RUN_FILE}: its registered_by is not a mapping; the file is damaged"
        )
    for choice, where in registered_by.items():
        recorded = registration(run_dir / rundir.RUN_FILE, str(choice), where)
        group, _, option = str(choice).partition("=")
        if option not in options(group):
            raise UserError(not_registered(run_dir, str(choice), recorded, command, info.get("command")))
    resumed = info.get("resumed") or []
    overrides = (
        resumed[-1].get("overrides") if isinstance(resumed, list) and resumed else info.get("overrides")
    )
    if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
        raise UserError(
            f"{run_dir / rundir.RUN_FILE}: its overrides are not a list of strings; the file is damaged"
        )
    kept = []
    for line, override in zip(overrides, _parse(run_dir, overrides), strict=True):
        if override.key_or_group.startswith("hydra") or override.package is not None:
            raise UserError(
                f"{run_dir / rundir.RUN_FILE}: refused the saved override {line}: a run directory may only "
                f"hold the run's own settings, never Hydra's (callbacks, logging, env_set, output directories)"
            )
        if override.key_or_group != "resume":  # where to continue is the caller's to say
            kept.append(line)
    return kept


def _parse(run_dir: Path, overrides: list[str]) -> list[Override]:
    try:
        return OverridesParser.create().parse_overrides(overrides)
    except OverrideParseException as error:
        raise UserError(
            f"{run_dir / rundir.RUN_FILE}: a saved override does not parse ({error}); the file is damaged"
        ) from error


def resume_overrides(run_dir: str | Path, overrides: Sequence[str] = ()) -> list[str]:
    """The run's own overrides, each new one in place of a saved one of its key (they never pile up), and
    where to continue."""
    given = {override_key(line) for line in overrides}
    kept = [line for line in saved_overrides(Path(run_dir), "resume") if override_key(line) not in given]
    return [*kept, *overrides, rundir.path_override("resume", run_dir)]


def rerun_overrides(run_dir: Path) -> list[str]:
    """The overrides that repeat a run, with its recorded thread count; refused when the code's defaults
    have changed since."""
    overrides = saved_overrides(run_dir, "rerun")
    threads = recorded_threads(run_dir)
    if threads:  # the count it ran with (chosen by the machine it ran on, or an older default)
        overrides = [o for o in overrides if not o.lstrip("+").startswith(f"{THREADS}=")]
        overrides.append(f"{THREADS}={threads}")
    changes = config_changes(run_dir, compose_config(overrides), {"resume"})
    if changes:
        listed = "\n".join(f"    {change}" for change in changes)
        raise UserError(f"{run_dir}: the config these overrides give today differs from the run's:\n{listed}")
    return overrides
