"""A sweep's ledger, `sweep.json`: the sweep's own overrides and every job it will run, written before the
first job starts. With it a sweep interrupted in any way can be finished (`zenexp resume SWEEP_DIR`), and
jobs that never started show as `not started`.

The ledger holds the plan only; each job's state is in its own folder (`status.json`, its checkpoints), which
only that job writes, so jobs running at once on several machines never write the same file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from zenexp.errors import UserError
from zenexp.run import layout, rundir
from zenexp.run.rundir import SWEEP_FILE

# The saved Hydra settings `zenexp resume SWEEP_DIR` gives Hydra again: the launcher, sweeper and logging
# configs chosen (by name: registered ones only), their counts, and the job folders' names. A ledger may come
# from someone else: anything else of Hydra's (setup commands, environment, log handlers, storage URLs) is
# refused, and is the user's to give on the command line.
RESUMABLE_HYDRA = (
    "hydra/launcher",
    "hydra/sweeper",
    "hydra/sweeper/sampler",
    "hydra/sweeper/pruner",
    "hydra/job_logging",
    "hydra/hydra_logging",
)
RESUMABLE_HYDRA_PREFIXES = ("hydra.sweeper.params.", "hydra.sweeper.sampler.", "hydra.sweeper.pruner.")
RESUMABLE_HYDRA_KEYS = (
    {"hydra.output_subdir", "hydra.sweep.subdir"}
    | {
        f"hydra.launcher.{key}"
        for key in (
            "n_jobs",
            "timeout_min",
            "cpus_per_task",
            "gpus_per_node",
            "tasks_per_node",
            "nodes",
            "mem_gb",
        )
    }
    | {
        f"hydra.sweeper.{key}"
        for key in (
            "n_trials",
            "n_jobs",
            "direction",
            "max_failure_rate",
            "max_batch_size",
            "storage",
            "study_name",
        )
    }
)


JOB_NUMBER = "${hydra.job.num}"  # in hydra.sweep.subdir: the one interpolation a ledger may hold


@dataclass(frozen=True)
class PlannedJob:
    job: str  # its folder in the sweep directory
    overrides: list[str]
    config_hash: str  # of the config composed for it when the sweep started


@dataclass(frozen=True)
class Ledger:
    overrides: list[str]  # the sweep's own, as typed: Hydra's, then the task's
    sweeper: str  # "grid": every job listed; "search": trials chosen as they go (the study is in the folder)
    jobs: list[PlannedJob]
    trials: int | None = None  # a search's planned number of trials


def config_hash(config_yaml: str, values: Sequence[str]) -> str:
    """A job's config, as its composed config before its values, and its values: the same hash means the
    same experiment (composing is deterministic). Targets are hashed as the older layout spelled them, so
    that a sweep started before the modules moved resumes."""
    return hashlib.sha256("\n".join([layout.as_older(config_yaml), *values]).encode()).hexdigest()[:16]


def write(sweep_dir: Path, ledger: Ledger) -> None:
    rundir.write_json(sweep_dir / SWEEP_FILE, asdict(ledger))


def read(sweep_dir: Path) -> Ledger:
    """The ledger of `sweep_dir`, every field checked: a damaged or forged file is one line naming it."""
    path = sweep_dir / SWEEP_FILE
    raw = rundir.read_json(path)
    try:
        jobs = [_job(job) for job in raw["jobs"]]
        ledger = Ledger(_strings(raw["overrides"]), str(raw["sweeper"]), jobs, raw.get("trials"))
    except (KeyError, TypeError, ValueError) as error:
        raise UserError(f"{path}: not a zenexp sweep ledger ({error}); the file is damaged") from error
    if ledger.sweeper not in ("grid", "search") or not (
        ledger.trials is None or (isinstance(ledger.trials, int) and ledger.trials >= 0)
    ):
        raise UserError(f"{path}: not a zenexp sweep ledger (sweeper, trials); the file is damaged")
    if any(Path(job.job).name != job.job or job.job in ("", ".", "..") for job in jobs) or len(
        {job.job for job in jobs}
    ) != len(jobs):
        raise UserError(f"{path}: its job folders must be distinct plain names; the file is damaged")
    return ledger


def _job(raw: Any) -> PlannedJob:
    if not isinstance(raw, dict):
        raise TypeError("a job is not an object")
    return PlannedJob(str(raw["job"]), _strings(raw["overrides"]), str(raw["config_hash"]))


def _strings(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise TypeError("expected a list of strings")
    return value


def resume_overrides(sweep_dir: Path, overrides: Sequence[str]) -> list[str]:
    """The command line that finishes a sweep: `-m`, its saved overrides (Hydra's only from the allowed
    few), the ones given now, and its directory (where the sweeper finds its ledger)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    ledger = read(sweep_dir)
    try:
        parsed = OverridesParser.create().parse_overrides(ledger.overrides)
    except OverrideParseException as error:
        raise UserError(f"{sweep_dir / SWEEP_FILE}: a saved override does not parse ({error})") from error
    kept = []
    for override in parsed:
        key, line = override.key_or_group, str(override.input_line)
        if key == "hydra.sweep.dir":
            continue  # the directory given now
        if key.startswith("hydra") and not (
            key in RESUMABLE_HYDRA or key in RESUMABLE_HYDRA_KEYS or key.startswith(RESUMABLE_HYDRA_PREFIXES)
        ):
            raise UserError(
                f"{sweep_dir / SWEEP_FILE}: refused the saved override {line}: a ledger may only choose the "
                f"launcher and sweeper and their counts (this one was not written by zenexp)"
            )
        if override.package is not None or (key.startswith("hydra") and "${" in line.replace(JOB_NUMBER, "")):
            raise UserError(f"{sweep_dir / SWEEP_FILE}: refused the saved override {line}")
        kept.append(line)
    given = [o for o in overrides if not o.startswith(("hydra.", "hydra/"))]
    if given:
        raise UserError(
            f"{' '.join(given)}: a sweep's jobs keep their own settings; only Hydra's (the launcher and its "
            f"resources) may be given when resuming a sweep, and one run takes more epochs with "
            f"zenexp resume RUN_DIR trainer.epochs=N"
        )
    return ["-m", *kept, *overrides, rundir.path_override("hydra.sweep.dir", sweep_dir)]
