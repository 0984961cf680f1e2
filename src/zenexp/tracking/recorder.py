"""Recording a run: a metrics file in the run directory, always, and a SwanLab run unless disabled.

The metrics file is the record that cannot fail: SwanLab problems turn into a warning and, where possible,
an offline SwanLab run (`swanlab_run`), never into a lost run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import TextIO

from omegaconf import DictConfig

from zenexp.configs import TrackerConf, TrackerMode
from zenexp.run.rundir import METRICS_FILE, SUMMARY_FILE, keep_metrics_until, write_json
from zenexp.tracking.swanlab_run import SwanLabRun


class MetricsFile:
    """`metrics.jsonl`: one JSON object per `log` call, flushed at once, so a killed run loses at most the
    record being written. A resumed run's file keeps the records up to the step it continues from."""

    def __init__(self, output_dir: Path, continues_at: int | None) -> None:
        if continues_at is not None:
            keep_metrics_until(output_dir, continues_at)
        self._file: TextIO = open(output_dir / METRICS_FILE, "a", encoding="utf-8")  # noqa: SIM115

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        self._file.write(json.dumps({"step": step, **metrics}) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class Recorder:
    """One run's records: its metrics file (unless `metrics_file=False`: an evaluation of a finished run),
    `summary.json`, and its SwanLab run. Use as a context manager: leaving on an exception marks the SwanLab
    run crashed (aborted on Ctrl-C or SIGTERM)."""

    def __init__(
        self,
        settings: TrackerConf,
        config: DictConfig,
        output_dir: Path,
        experiment_name: str,
        continues: tuple[str | None, int] | None = None,
        group: str | None = None,
        metrics_file: bool = True,
    ) -> None:
        self.output_dir = output_dir
        at = continues[1] if continues is not None else None
        self._metrics = MetricsFile(output_dir, at) if metrics_file else None
        self._swanlab = (
            SwanLabRun(settings, config, output_dir, experiment_name, continues, group)
            if settings.mode is not TrackerMode.disabled
            else None
        )

    @property
    def run_id(self) -> str | None:
        return self._swanlab.run_id if self._swanlab is not None else None

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        if self._metrics is not None:
            self._metrics.log(metrics, step)
        if self._swanlab is not None:
            self._swanlab.log(metrics, step)

    def log_image(self, name: str, png: Path, step: int) -> None:
        """A picture, to SwanLab only (the run directory holds the file itself)."""
        if self._swanlab is not None:
            self._swanlab.log_image(name, png, step)

    def summarise(self, metrics: Mapping[str, float], step: int, facts: Mapping[str, bool]) -> None:
        """Record the final metrics and facts (`stopped_early`): `summary.json`, and the SwanLab run's summary."""
        write_json(self.output_dir / SUMMARY_FILE, {**metrics, **facts})
        if self._swanlab is not None:
            self._swanlab.summarise({**metrics, **facts})

    def __enter__(self) -> Recorder:
        return self

    def __exit__(
        self,
        error_type: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._metrics is not None:
            self._metrics.close()
        if self._swanlab is not None:
            self._swanlab.finish(error)
