"""Sweeps: each job's status in its run directory, and a summary of all jobs in the sweep directory.

`SweepRecorder` is a Hydra callback (configured in `MainConfig.hydra.callbacks`), so it works with every
launcher: it runs where each job runs (this process, a joblib worker, a Slurm node) and writes files only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from zenexp import rundir
from zenexp.errors import UserError
from zenexp.rundir import HYDRA_SUBDIR, METRICS_FILE, STATUS_FILE, SUMMARY_FILE, SWEEP_SUMMARY_FILE

log = logging.getLogger("zenexp")

#: The sweep directory of the last multirun this process started (for the command line's final summary).
last_sweep_dir: Path | None = None


@dataclass(frozen=True)
class RunRecord:
    """One run as its directory recorded it."""

    run_dir: Path
    overrides: list[str]
    status: str  # finished, failed, "did not finish" (running, killed, never started), or damaged
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
    return RunRecord(run_dir, listed, str(status.get("status")), status.get("error"), numbers)


def job_dirs(sweep_dir: Path) -> list[Path]:
    """The run directories of a sweep, in job order."""
    jobs = [p for p in sweep_dir.iterdir() if p.is_dir() and (p / HYDRA_SUBDIR).is_dir()]
    return sorted(jobs, key=lambda p: (len(p.name), p.name))


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
    records = [read_run(job) for job in job_dirs(sweep_dir)]
    summary = {
        "sweep_dir": str(sweep_dir),
        "jobs": [record.as_json() for record in records],
        "finished": sum(record.status == "finished" for record in records),
        "failed": sum(record.status != "finished" for record in records),
    }
    rundir.write_json(sweep_dir / SWEEP_SUMMARY_FILE, summary)
    return records


class SweepRecorder(Callback):
    """Records each job's outcome in `status.json`, and keeps the sweep's summary up to date."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        global last_sweep_dir
        last_sweep_dir = Path(config.hydra.sweep.dir)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        # A job begins its run afresh, even in a directory an earlier job of this process trained in.
        rundir.begun.discard(Path(config.hydra.runtime.output_dir).resolve())

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        run_dir = Path(config.hydra.runtime.output_dir)
        if not run_dir.is_dir():  # refused before it started: nothing to record
            return
        if run_dir.resolve() not in rundir.begun and (
            config.get("resume") or (run_dir / rundir.RUN_FILE).exists()
        ):
            return  # refused or failed before it began, in a run that is not this job's: leave that run as it was
        error = None
        if job_return.status is JobStatus.FAILED:
            failure = job_return._return_value
            error = f"{type(failure).__name__}: {failure}"
            log.error(
                "job failed: %s", error, exc_info=failure if isinstance(failure, BaseException) else None
            )
        status: dict[str, Any] = {"status": "finished" if error is None else "failed", "error": error}
        if error is None and getattr(job_return.return_value, "stopped_early", False):
            status["stopped_early"] = True
        rundir.write_json(run_dir / STATUS_FILE, status)
        if config.hydra.mode == RunMode.MULTIRUN:
            write_sweep_summary(Path(config.hydra.sweep.dir))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        write_sweep_summary(Path(config.hydra.sweep.dir))
