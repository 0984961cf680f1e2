"""Recording a run: a metrics file in the run directory, always, and a SwanLab run unless disabled.

The metrics file is the record that cannot fail: SwanLab problems (no key, no network, an error while
logging) turn into a warning and, where possible, an offline SwanLab run, never into a lost run.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import socket
import ssl
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TextIO
from urllib.parse import SplitResult, urlsplit

from omegaconf import DictConfig, OmegaConf

from zenexp.configs import TrackerConf, TrackerMode
from zenexp.run.rundir import METRICS_FILE, SUMMARY_FILE, keep_metrics_until, write_json

log = logging.getLogger("zenexp")

API_KEY_VARIABLE = "SWANLAB_API_KEY"
API_HOST_VARIABLE = "SWANLAB_API_HOST"
DEFAULT_API_HOST = "https://api.swanlab.cn"
# SwanLab's own limits (swanlab/sdk/internal/pkg/constraints: ProjectName, ExperimentName, Description, Tags).
PROJECT_NAME = re.compile(r"[0-9a-zA-Z_\-+.]{1,100}")
NAME_MAX, DESCRIPTION_MAX, TAG_MAX, TAGS_MAX = 512, 1024, 512, 30


def tracker_problems(tracker: DictConfig) -> list[str]:
    """Settings SwanLab would refuse, found before the run (SwanLab itself would only warn, and not record)."""
    if tracker.mode is TrackerMode.disabled:
        return []
    problems = []
    if not PROJECT_NAME.fullmatch(tracker.project):
        problems.append(
            f"tracker.project={tracker.project}: SwanLab takes 1 to 100 letters, digits and _ - + . only"
        )
    name = tracker.experiment_name
    if name is not None and not 1 <= len(name) <= NAME_MAX:
        problems.append(f"tracker.experiment_name: {len(name)} characters; SwanLab takes 1 to {NAME_MAX}")
    if tracker.description is not None and len(tracker.description) > DESCRIPTION_MAX:
        problems.append(
            f"tracker.description: {len(tracker.description)} characters; SwanLab takes up to {DESCRIPTION_MAX}"
        )
    if len(tracker.tags) > TAGS_MAX or any(len(str(tag)) > TAG_MAX for tag in tracker.tags):
        problems.append(
            f"tracker.tags: SwanLab takes up to {TAGS_MAX} tags of up to {TAG_MAX} characters each"
        )
    return problems


def readable_config(config: DictConfig) -> dict[str, Any]:
    """The config as SwanLab shows it best: one field per value (`optim.lr`), each group's choice by name
    (`model: small`), and none of the `_target_` / `_partial_` keys that say how objects are built."""
    from hydra.core.hydra_config import HydraConfig

    plain = OmegaConf.to_container(config, resolve=True, enum_to_str=True)
    fields: dict[str, Any] = {}

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for key, child in value.items():
                if not str(key).startswith("_"):
                    walk(child, f"{path}.{key}" if path else str(key))
        else:
            fields[path] = value

    walk(plain, "")
    choices = HydraConfig.get().runtime.choices if HydraConfig.initialized() else {}
    for group in ("dataset", "model", "optim", "scheduler", "augment", "experiment"):
        node = plain.get(group) if isinstance(plain, dict) else None
        built = node.get("_target_") if isinstance(node, dict) else None  # a slot filled in Python
        if choices.get(group) is not None or built:
            fields[group] = choices.get(group) or str(built).rpartition(".")[2]
    return dict(sorted(fields.items()))


def shorten(name: str, limit: int = NAME_MAX) -> str:
    """A name SwanLab takes: a long default name (from many overrides) keeps its start and end."""
    if len(name) <= limit:
        return name
    keep = (limit - 3) // 2
    return f"{name[:keep]}...{name[-keep:]}"


def cloud_problem(timeout_s: float) -> str | None:
    """Why a cloud run cannot start right now, found within `timeout_s` seconds; None when it may.

    The server must answer an HTTP request in time: one that accepts the connection and then trickles bytes
    would hold `swanlab.init` for minutes. The probe runs in a daemon thread, so no socket state can stretch
    the bound."""
    if not os.environ.get(API_KEY_VARIABLE):
        return f"no API key in {API_KEY_VARIABLE}"
    host = os.environ.get(API_HOST_VARIABLE) or DEFAULT_API_HOST
    problem = host_problem(host)
    if problem:
        return problem
    url = urlsplit(host)
    port = url.port or (443 if url.scheme == "https" else 80)
    answers: list[str | None] = []
    probe = threading.Thread(target=lambda: answers.append(_probe(url, port, timeout_s)), daemon=True)
    probe.start()
    probe.join(timeout_s)
    return answers[0] if answers else _no_answer(url.hostname or "", port, timeout_s)


def host_problem(host: str) -> str | None:
    try:
        url = urlsplit(host)
        url.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError as error:
        return f"{API_HOST_VARIABLE}={host} is not a URL ({error})"
    if url.scheme not in ("http", "https") or not url.hostname:
        return f"{API_HOST_VARIABLE}={host} is not an http(s) URL"
    return None


@contextmanager
def _without_malformed_host() -> Iterator[None]:
    """SwanLab parses SWANLAB_API_HOST even offline and records nothing when it is malformed: hide such a
    host while SwanLab starts (an offline run never uses it; `swanlab sync` reads it again later)."""
    host = os.environ.get(API_HOST_VARIABLE)
    if host is None or host_problem(host) is None:
        yield
        return
    del os.environ[API_HOST_VARIABLE]
    try:
        yield
    finally:
        os.environ[API_HOST_VARIABLE] = host


def _no_answer(hostname: str, port: int, timeout_s: float) -> str:
    return f"{hostname}:{port} did not answer within {timeout_s:g} s"


def _probe(url: SplitResult, port: int, timeout_s: float) -> str | None:
    hostname = url.hostname or ""
    try:
        with socket.create_connection((hostname, port), timeout=timeout_s) as raw:
            sock = (
                ssl.create_default_context().wrap_socket(raw, server_hostname=hostname)
                if url.scheme == "https"
                else raw
            )
            sock.sendall(f"HEAD / HTTP/1.1\r\nHost: {hostname}\r\nConnection: close\r\n\r\n".encode())
            received = b""
            while b"\r\n" not in received:
                chunk = sock.recv(256)
                if not chunk:
                    return f"{hostname}:{port} closed the connection without answering"
                received += chunk
    except TimeoutError:  # the same bound as the caller's wait, which this may win by a hair
        return _no_answer(hostname, port, timeout_s)
    except OSError as error:
        return f"cannot reach {hostname}:{port} ({error})"
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
        metrics_file: bool = True,  # False: SwanLab only (an evaluation of a finished run)
    ) -> None:
        self.output_dir = output_dir
        self.run_id: str | None = None
        if continues is not None:
            keep_metrics_until(output_dir, continues[1])
        self._metrics: TextIO | None = (
            open(output_dir / METRICS_FILE, "a", encoding="utf-8") if metrics_file else None
        )
        self._swanlab = settings.mode is not TrackerMode.disabled
        self._banners = settings.banners
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

        tags, description = list(settings.tags), settings.description
        if continues is not None:
            first_id, step = continues
            tags.append("resumed")
            description = f"resumes SwanLab run {first_id} from step {step}. {description or ''}".strip()
        mode: Literal["online", "offline", "local"] = (
            "local" if settings.mode is TrackerMode.local else "offline"
        )
        if settings.mode is TrackerMode.cloud:
            problem = cloud_problem(settings.setup_timeout_s)
            mode = "offline" if problem else "online"
            if problem:
                log.warning(
                    "tracker.mode=cloud: %s; recording offline instead (swanlab sync uploads later)", problem
                )

        def start(mode: Literal["online", "offline", "local"]) -> None:
            with _without_malformed_host(), self._quiet():
                run = swanlab.init(
                    mode=mode,
                    log_dir=str(self.output_dir / settings.logdir),
                    project=settings.project,
                    name=shorten(experiment_name),
                    group=shorten(group) if group else None,
                    description=description,
                    tags=tags,
                    config=readable_config(config),
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
        if self._metrics is not None:
            self._metrics.write(json.dumps({"step": step, **metrics}) + "\n")
            self._metrics.flush()
        self._log_to_swanlab(metrics, step)

    def log_image(self, name: str, png: Path, step: int) -> None:
        """A picture, to SwanLab only (the run directory holds the file itself)."""
        if self._swanlab:
            import swanlab

            self._log_to_swanlab({name: swanlab.Image(str(png))}, step)

    def summarise(self, metrics: Mapping[str, float], step: int, facts: Mapping[str, bool]) -> None:
        """Record the final metrics and facts (`stopped_early`): `summary.json`, and in SwanLab, fields
        `summary/<name>` beside the config (one value each, not one-point charts)."""
        write_json(self.output_dir / SUMMARY_FILE, {**metrics, **facts})
        if self._swanlab:
            import swanlab

            try:
                swanlab.config.update(
                    {f"summary/{name}": value for name, value in {**metrics, **facts}.items()}
                )
            except Exception as error:  # noqa: BLE001
                self._give_up_swanlab(error)

    def _log_to_swanlab(self, metrics: Mapping[str, Any], step: int) -> None:
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
        if self._metrics is not None:
            self._metrics.close()
        if not self._swanlab:
            return
        import swanlab

        try:
            with self._quiet():
                if error is None:
                    swanlab.finish()
                elif isinstance(error, KeyboardInterrupt):
                    # With an error, as SwanLab's local dashboard shows a run without one as finished.
                    swanlab.finish(state="aborted", error=str(error) or "KeyboardInterrupt")
                else:
                    swanlab.finish(state="crashed", error=f"{type(error).__name__}: {error}")
        except Exception as finish_error:  # noqa: BLE001
            log.warning("SwanLab could not finish the run: %s", finish_error)

    @contextmanager
    def _quiet(self) -> Iterator[None]:
        """SwanLab's own console lines (its banner, where it saves, the sync hint) go to the run's log file
        only, unless `tracker.banners`."""
        if self._banners:
            yield
            return
        captured = io.StringIO()
        try:
            with redirect_stdout(captured):
                yield
        finally:
            text = " ".join(captured.getvalue().split())  # rich wraps at 80 columns off a terminal
            for message in filter(None, (part.strip() for part in text.split("swanlab:"))):
                log.info("swanlab: %s", message, extra={"console": False})
