"""Recording a run: a metrics file in the run directory, always, and a SwanLab run unless disabled."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import TextIO

from omegaconf import DictConfig, OmegaConf

from zenexp.configs import TrackerConf, TrackerMode
from zenexp.errors import UserError

METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
API_KEY_VARIABLE = "SWANLAB_API_KEY"


def check_tracker(settings: TrackerConf) -> None:
    """Fail before any work when the tracker could not start."""
    if settings.mode is TrackerMode.cloud and not os.environ.get(API_KEY_VARIABLE):
        raise UserError(
            f"tracker.mode=cloud needs a SwanLab API key in {API_KEY_VARIABLE}; "
            f"set it, or record locally with tracker.mode=offline"
        )


class Recorder:
    """One run's records. Use as a context manager: leaving on an exception marks the SwanLab run crashed.

    `metrics.jsonl` gets one JSON object per `log` call, flushed at once, so it survives a crash;
    `summary.json` gets the final metrics.
    """

    def __init__(
        self, settings: TrackerConf, config: DictConfig, output_dir: Path, experiment_name: str
    ) -> None:
        check_tracker(settings)
        self.output_dir = output_dir
        self._metrics: TextIO = open(output_dir / METRICS_FILE, "a", encoding="utf-8")
        self._swanlab = settings.mode is not TrackerMode.disabled
        if self._swanlab:
            import swanlab

            plain_config = OmegaConf.to_container(config, resolve=True, enum_to_str=True)
            assert isinstance(plain_config, dict)  # SwanLab rejects a DictConfig
            swanlab.init(
                mode="online" if settings.mode is TrackerMode.cloud else settings.mode.value,
                log_dir=str(output_dir / settings.logdir),
                project=settings.project,
                name=settings.experiment_name or experiment_name,
                description=settings.description,
                tags=list(settings.tags),
                config=plain_config,
                settings=swanlab.Settings(
                    interactive=False,  # never wait for a key on the terminal
                    api_key=os.environ.get(API_KEY_VARIABLE),
                    # zenexp records what it needs; SwanLab's probes and console capture cost ~0.5 s a run.
                    probe=swanlab.Settings.Probe(
                        hardware=False, runtime=False, requirements=False, git=False, monitor=False
                    ),
                    terminal=swanlab.Settings.Terminal(proxy_type="none"),
                ),
            )

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        self._metrics.write(json.dumps({"step": step, **metrics}) + "\n")
        self._metrics.flush()
        if self._swanlab:
            import swanlab

            swanlab.log(metrics, step=step)

    def summarise(self, metrics: Mapping[str, float], step: int) -> None:
        """Record the final metrics: `summary.json`, and SwanLab's `final/...` values."""
        (self.output_dir / SUMMARY_FILE).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
        if self._swanlab:
            import swanlab

            swanlab.log({f"final/{name}": value for name, value in metrics.items()}, step=step)

    def __enter__(self) -> Recorder:
        return self

    def __exit__(
        self,
        error_type: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._metrics.close()
        if not self._swanlab:
            return
        import swanlab

        if error is None:
            swanlab.finish()
        elif isinstance(error, KeyboardInterrupt):
            swanlab.finish(state="aborted")
        else:
            swanlab.finish(state="crashed", error=f"{type(error).__name__}: {error}")
