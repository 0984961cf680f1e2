"""Sweeps: each job's status in its run directory, and a summary of all jobs in the sweep directory.

`SweepRecorder` is a Hydra callback (configured in `MainConfig.hydra.callbacks`), so it works with every
launcher: it runs where each job runs (this process, a joblib worker, a Slurm node) and writes files only.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import CompactHydraException
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from zenexp import compat
from zenexp.errors import UserError
from zenexp.parallel import distributed
from zenexp.run import rundir
from zenexp.run.rundir import HYDRA_SUBDIR, METRICS_FILE, STATUS_FILE, SUMMARY_FILE, SWEEP_SUMMARY_FILE
from zenexp.sweep import ledger

log = logging.getLogger("zenexp")

STATUSES = ("finished", "pruned", "failed", "aborted", "did not finish", "not started", "damaged")
DONE = ("finished", "pruned")  # a pruned trial ended as its search wanted: nothing to resume

#: The sweep directory of the last multirun this process started (for the command line's final summary).
last_sweep_dir: Path | None = None


class JobFailed(CompactHydraException):
    """A sweep's job that failed, in one line (its log has the traceback): Hydra prints it as it is."""


def one_line(error: Any) -> str:
    """A job's failure as one line: a zenexp error as it is, any other with its type."""
    if isinstance(error, (JobFailed, UserError)):
        return str(error)
    return f"{type(error).__name__}: {error}"


@dataclass(frozen=True)
class RunRecord:
    """One run as its directory recorded it."""

    run_dir: Path
    overrides: list[str]
    # finished, pruned (a search's trial its pruner stopped), failed, aborted (stopped by a signal), "did not
    # finish" (running, or killed), "not started" (a sweep's job that never began), or damaged
    status: str
    error: str | None
    metrics: dict[str, float]

    def as_json(self) -> dict[str, Any]:
        return {
            "job": self.run_dir.name,
            "overrides": self.overrides,
            "status": self.status,
            "error": self.error,
            "metrics": self.metrics,
        }


def read_run(run_dir: Path) -> RunRecord:
    """A run as its files say; a damaged file makes the run `damaged`, with one line naming the file."""
    try:
        overrides_file = run_dir / HYDRA_SUBDIR / "overrides.yaml"
        overrides = (
            OmegaConf.to_container(rundir.read_yaml(overrides_file)) if overrides_file.is_file() else []
        )
        if (run_dir / rundir.RUN_FILE).is_file():  # a resumed run is what its latest resume made it
            resumed = rundir.read_json(run_dir / rundir.RUN_FILE).get("resumed")
            latest = resumed[-1] if isinstance(resumed, list) and resumed else None
            if isinstance(latest, dict) and isinstance(latest.get("overrides"), list):
                overrides = [o for o in latest["overrides"] if not str(o).startswith("resume=")]
        status: dict[str, Any] = {"status": "did not finish", "error": None}
        if (run_dir / STATUS_FILE).is_file():
            status = rundir.read_json(run_dir / STATUS_FILE)
        metrics: dict[str, Any] = {}
        if (run_dir / SUMMARY_FILE).is_file():
            metrics = rundir.read_json(run_dir / SUMMARY_FILE)
    except UserError as error:
        return RunRecord(run_dir, [], "damaged", str(error), {})
    numbers = {
        k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    listed = [str(o) for o in overrides] if isinstance(overrides, list) else []
    said = status.get("error")
    if status.get("status") == "aborted":
        said = f"stopped by {status.get('signal')}"
    return RunRecord(run_dir, listed, str(status.get("status")), None if said is None else str(said), numbers)


def job_dirs(sweep_dir: Path) -> list[Path]:
    """The run directories of a sweep, in job order."""
    jobs = [p for p in sweep_dir.iterdir() if p.is_dir() and (p / HYDRA_SUBDIR).is_dir()]
    return sorted(jobs, key=lambda p: (len(p.name), p.name))


def sweep_runs(sweep_dir: Path) -> list[RunRecord]:
    """Every job of a sweep: those its ledger plans (`not started` when they never began), then any other job
    folder (a search's trials)."""
    planned: list[RunRecord] = []
    if (sweep_dir / rundir.SWEEP_FILE).is_file():
        try:
            jobs = ledger.read(sweep_dir).jobs
        except UserError as error:
            return [RunRecord(sweep_dir, [], "damaged", str(error), {})]
        for job in jobs:
            folder = sweep_dir / job.job
            record = read_run(folder) if folder.is_dir() else RunRecord(folder, [], "not started", None, {})
            planned.append(
                record if record.overrides else dataclasses.replace(record, overrides=job.overrides)
            )
    names = {record.run_dir.name for record in planned}
    return planned + [read_run(job) for job in job_dirs(sweep_dir) if job.name not in names]


def run_dirs(paths: list[Path]) -> list[Path]:
    """Each path as a run directory, or the run directories of a sweep directory."""
    found: list[Path] = []
    for path in paths:
        if (path / METRICS_FILE).is_file() or (path / HYDRA_SUBDIR).is_dir():
            found.append(path)
        elif path.is_dir():
            found += job_dirs(path)
    return found


def write_sweep_summary(sweep_dir: Path) -> list[RunRecord]:
    """Write `sweep_summary.json` from the jobs' own records (atomically: jobs may finish together)."""
    records = sweep_runs(sweep_dir)
    summary = {
        "sweep_dir": str(sweep_dir),
        "jobs": [record.as_json() for record in records],
        **{status: sum(r.status == status for r in records) for status in STATUSES},
    }
    rundir.write_json(sweep_dir / SWEEP_SUMMARY_FILE, summary)
    return records


class ConsoleFilter(logging.Filter):
    """What a job shows on the console (its log file has every line): in a sweep, one line as it starts
    (Hydra's) and one as it ends (zenexp's), and warnings; a record can say itself (`extra={"console": ...}`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        shown = getattr(record, "console", None)
        if shown is not None:
            return bool(shown)
        in_sweep = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
        return record.levelno >= logging.WARNING or not in_sweep


class LogFileFilter(logging.Filter):
    """A record meant for the console only (`extra={"log_file": False}`) stays out of the log file."""

    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(record, "log_file", True) is not False


class SweepRecorder(Callback):
    """Records each job's outcome in `status.json`, and keeps the sweep's summary up to date."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        global last_sweep_dir
        last_sweep_dir = Path(config.hydra.sweep.dir)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        # A job begins its run afresh, even in a directory an earlier job of this process trained in.
        rundir.begun.discard(Path(config.hydra.runtime.output_dir).resolve())
        # What the console and the log file show, whatever logging the job configured (hydra/job_logging).
        for handler in logging.getLogger().handlers:
            wanted = LogFileFilter if isinstance(handler, logging.FileHandler) else ConsoleFilter
            if not any(isinstance(f, (ConsoleFilter, LogFileFilter)) for f in handler.filters):
                handler.addFilter(wanted())

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if not distributed.records():  # a Slurm task of a job on several devices, other than rank 0
            return
        run_dir = Path(config.hydra.runtime.output_dir)
        sweep = config.hydra.mode == RunMode.MULTIRUN
        name = f"job {config.hydra.job.num}" if sweep else "run"
        if not run_dir.is_dir():  # refused before it started: nothing to record
            return
        if job_return.status is JobStatus.COMPLETED:
            result = job_return.return_value
            facts = {"stopped_early": True} if getattr(result, "stopped_early", False) else {}
            status = "pruned" if getattr(result, "pruned", False) else "finished"
            rundir.write_status(run_dir, status, **facts)
            if sweep:
                log.info(
                    "%s %s: val_accuracy %.4f (%s)",
                    name,
                    status,
                    float(result),
                    run_dir,
                    extra={"console": True},
                )
        else:
            failure = compat.failure_of(job_return)
            error = one_line(failure)
            cause = failure.__cause__ if isinstance(failure, JobFailed) else failure
            # Refused or failed before it began, in a run that is not this job's: that run is left as it was
            # (its log included).
            owned = run_dir.resolve() in rundir.begun or not (
                config.get("resume") or (run_dir / rundir.RUN_FILE).exists()
            )
            if isinstance(cause, UserError) or not owned:
                log.error("%s failed: %s", name, error, extra={"log_file": owned})
            else:  # the traceback in the log file, one line on the console
                log.error("%s failed: %s", name, error, exc_info=failure, extra={"console": False})
                log.error("%s failed: %s", name, error, extra={"console": True, "log_file": False})
            if owned:
                rundir.write_status(run_dir, "failed", error=error)
        if sweep:
            write_sweep_summary(Path(config.hydra.sweep.dir))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        write_sweep_summary(Path(config.hydra.sweep.dir))
