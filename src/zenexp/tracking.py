"""Recording a run: a metrics file in the run directory, always, and a SwanLab run unless disabled.

The metrics file is the record that cannot fail: SwanLab problems (no key, no network, an error while
logging) turn into a warning and, where possible, an offline SwanLab run, never into a lost run.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Literal, TextIO
from urllib.parse import urlsplit

from omegaconf import DictConfig, OmegaConf

from zenexp.configs import TrackerConf, TrackerMode

log = logging.getLogger("zenexp")

METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
API_KEY_VARIABLE = "SWANLAB_API_KEY"
API_HOST_VARIABLE = "SWANLAB_API_HOST"
DEFAULT_API_HOST = "https://api.swanlab.cn"
REACH_TIMEOUT_S = 3.0


def read_metrics(output_dir: Path) -> list[dict[str, float]]:
    """The records of a run's `metrics.jsonl`, without a line a killed run left half written."""
    path = output_dir / METRICS_FILE
    records = []
    for line in path.read_text(encoding="utf-8").splitlines() if path.is_file() else []:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def keep_metrics_until(output_dir: Path, step: int) -> None:
    """Drop records after `step` (a resumed run writes them again), rewriting the file atomically."""
    path = output_dir / METRICS_FILE
    kept = [record for record in read_metrics(output_dir) if record["step"] <= step]
    temporary = path.with_suffix(".tmp")
    temporary.write_text("".join(json.dumps(record) + "\n" for record in kept), encoding="utf-8")
    os.replace(temporary, path)


def cloud_problem() -> str | None:
    """Why a cloud run cannot start right now, found within a few seconds; None when it may."""
    if not os.environ.get(API_KEY_VARIABLE):
        return f"no API key in {API_KEY_VARIABLE}"
    url = urlsplit(os.environ.get(API_HOST_VARIABLE) or DEFAULT_API_HOST)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname or "", port), timeout=REACH_TIMEOUT_S).close()
    except OSError as error:
        return f"cannot reach {url.hostname}:{port} ({error})"
    return None


class Recorder:
    """One run's records. Use as a context manager: leaving on an exception marks the SwanLab run crashed
    (aborted on Ctrl-C or SIGTERM).

    `metrics.jsonl` gets one JSON object per `log` call, flushed at once, so a killed run loses at most the
    record being written; `summary.json` gets the final metrics.
    """

    def __init__(
        self,
        settings: TrackerConf,
        config: DictConfig,
        output_dir: Path,
        experiment_name: str,
        continues: tuple[str | None, int] | None = None,
        group: str | None = None,
    ) -> None:
        self.output_dir = output_dir
        self.run_id: str | None = None
        if continues is not None:
            keep_metrics_until(output_dir, continues[1])
        self._metrics: TextIO = open(output_dir / METRICS_FILE, "a", encoding="utf-8")
        self._swanlab = settings.mode is not TrackerMode.disabled
        if self._swanlab:
            self._start_swanlab(settings, config, experiment_name, continues, group)

    def _start_swanlab(
        self,
        settings: TrackerConf,
        config: DictConfig,
        experiment_name: str,
        continues: tuple[str | None, int] | None,
        group: str | None,  # the sweep this run belongs to
    ) -> None:
        import swanlab

        plain_config = OmegaConf.to_container(config, resolve=True, enum_to_str=True)
        assert isinstance(plain_config, dict)  # SwanLab rejects a DictConfig
        tags, description = list(settings.tags), settings.description
        if continues is not None:
            first_id, step = continues
            tags.append("resumed")
            description = f"resumes SwanLab run {first_id} from step {step}. {description or ''}".strip()
        mode: Literal["online", "offline", "local"] = (
            "local" if settings.mode is TrackerMode.local else "offline"
        )
        if settings.mode is TrackerMode.cloud:
            problem = cloud_problem()
            mode = "offline" if problem else "online"
            if problem:
                log.warning(
                    "tracker.mode=cloud: %s; recording offline instead (swanlab sync uploads later)", problem
                )

        def start(mode: Literal["online", "offline", "local"]) -> None:
            run = swanlab.init(
                mode=mode,
                log_dir=str(self.output_dir / settings.logdir),
                project=settings.project,
                name=experiment_name,
                group=group,
                description=description,
                tags=tags,
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
            self.run_id = run.id

        try:
            start(mode)
        except Exception as error:  # noqa: BLE001  (SwanLab raises many kinds; none may stop the run)
            if mode != "online":
                self._give_up_swanlab(error)
                return
            log.warning("SwanLab cloud run failed to start (%s); recording offline instead", error)
            try:
                start("offline")
            except Exception as offline_error:  # noqa: BLE001
                self._give_up_swanlab(offline_error)

    def _give_up_swanlab(self, error: BaseException) -> None:
        log.warning(
            "SwanLab stopped recording (%s: %s); %s still gets everything",
            type(error).__name__,
            error,
            METRICS_FILE,
        )
        self._swanlab = False
        if self.run_id is not None:  # close the run, or the next one in this process could not start
            import swanlab

            try:
                swanlab.finish(state="crashed", error=f"{type(error).__name__}: {error}")
            except Exception:  # noqa: BLE001  (nothing more to save from a broken tracker)
                pass

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        self._metrics.write(json.dumps({"step": step, **metrics}) + "\n")
        self._metrics.flush()
        self._log_to_swanlab(metrics, step)

    def summarise(self, metrics: Mapping[str, float], step: int) -> None:
        """Record the final metrics: `summary.json`, and SwanLab's `final/...` values."""
        (self.output_dir / SUMMARY_FILE).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
        self._log_to_swanlab({f"final/{name}": value for name, value in metrics.items()}, step)

    def _log_to_swanlab(self, metrics: Mapping[str, float], step: int) -> None:
        if self._swanlab:
            import swanlab

            try:
                swanlab.log(metrics, step=step)
            except Exception as error:  # noqa: BLE001
                self._give_up_swanlab(error)

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

        try:
            if error is None:
                swanlab.finish()
            elif isinstance(error, KeyboardInterrupt):
                swanlab.finish(state="aborted")
            else:
                swanlab.finish(state="crashed", error=f"{type(error).__name__}: {error}")
        except Exception as finish_error:  # noqa: BLE001
            log.warning("SwanLab could not finish the run: %s", finish_error)
