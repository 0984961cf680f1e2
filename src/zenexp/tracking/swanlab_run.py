"""A run's SwanLab records: started offline, locally or in the cloud (offline when the cloud cannot be
reached), given metrics, pictures and the summary, and finished as the run ended. SwanLab problems (no key,
no network, an error while logging) turn into a warning, never into a lost run: the run directory's metrics
file still gets everything."""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import Any, Literal

from omegaconf import DictConfig

from zenexp.configs import TrackerConf, TrackerMode
from zenexp.run.rundir import METRICS_FILE
from zenexp.tracking.cloud import API_KEY_VARIABLE, cloud_problem, without_malformed_host
from zenexp.tracking.settings import readable_config, shorten

log = logging.getLogger("zenexp")


class SwanLabRun:
    """One SwanLab run, or none once SwanLab has failed (`active` is then False)."""

    def __init__(
        self,
        settings: TrackerConf,
        config: DictConfig,
        output_dir: Path,
        experiment_name: str,
        continues: tuple[str | None, int] | None,
        group: str | None,  # the sweep this run belongs to
    ) -> None:
        self.output_dir = output_dir
        self.run_id: str | None = None
        self.active = True
        self._banners = settings.banners
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
            with without_malformed_host(), self._quiet():
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
                self.give_up(error)
                return
            log.warning("SwanLab cloud run failed to start (%s); recording offline instead", error)
            try:
                start("offline")
            except Exception as offline_error:  # noqa: BLE001
                self.give_up(offline_error)

    def give_up(self, error: BaseException) -> None:
        log.warning(
            "SwanLab stopped recording (%s: %s); %s still gets everything",
            type(error).__name__,
            error,
            METRICS_FILE,
        )
        self.active = False
        if self.run_id is not None:  # close the run, or the next one in this process could not start
            import swanlab

            try:
                swanlab.finish(state="crashed", error=f"{type(error).__name__}: {error}")
            except Exception:  # noqa: BLE001  (nothing more to save from a broken tracker)
                pass

    def log(self, metrics: Mapping[str, Any], step: int) -> None:
        if self.active:
            import swanlab

            try:
                swanlab.log(metrics, step=step)
            except Exception as error:  # noqa: BLE001
                self.give_up(error)

    def log_image(self, name: str, png: Path, step: int) -> None:
        if self.active:
            import swanlab

            self.log({name: swanlab.Image(str(png))}, step)

    def summarise(self, values: Mapping[str, float | bool]) -> None:
        """Fields `summary/<name>` beside the config (one value each, not one-point charts)."""
        if self.active:
            import swanlab

            try:
                swanlab.config.update({f"summary/{name}": value for name, value in values.items()})
            except Exception as error:  # noqa: BLE001
                self.give_up(error)

    def finish(self, error: BaseException | None) -> None:
        """Finished, crashed on an error, or aborted on Ctrl-C or SIGTERM."""
        if not self.active:
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
