"""The sweeper's trials without batches: `n_jobs` trials running at once, a new one asked for as each ends;
each launch waits in a thread, and every Optuna call stays in the main thread."""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from hydra.core.utils import JobReturn, JobStatus

if TYPE_CHECKING:
    pass
from zenexp.sweep.search.space import trial_overrides
from zenexp.sweep.search.study import tell

log = logging.getLogger("zenexp")


class Trials:
    """Runs a search's trials, `in_flight` at once: interrupted ones first, then new ones asked of the
    study, each asked as a slot frees (no waiting for a whole batch). A trial whose job fails, or that its
    launcher cannot start (a point that does not compose), is failed in the study and the search goes on,
    until more than `failures_allowed` have failed in this run."""

    def __init__(
        self,
        study: Any,
        launch: Callable[[int, list[str]], JobReturn],
        space: Mapping[str, Any],
        fixed: list[str],
        in_flight: int,
        failures_allowed: int,
    ) -> None:
        self.study, self.launch, self.space, self.fixed = study, launch, space, fixed
        self.in_flight, self.failures_allowed = in_flight, failures_allowed
        self.failed = 0  # in this run
        self.stopped = False  # asking, until too many trials failed

    def run(self, interrupted: list[tuple[int, list[str]]], to_ask: int) -> None:
        waiting = list(reversed(interrupted))
        left = to_ask

        def next_job() -> tuple[int, list[str]] | None:
            nonlocal left
            if waiting:
                return waiting.pop()
            if left <= 0 or self._too_many_failures():
                return None
            left -= 1
            trial = self.study.ask(dict(self.space))
            return trial.number, [*self.fixed, *trial_overrides(trial.params)]

        if self.in_flight == 1:  # in this thread: the basic launcher runs the job here, signals and all
            while (job := next_job()) is not None:
                self._ended(job[0], self._launched(*job))
            return
        # Each launch waits for its job in a thread of its own; daemon threads, so that a Ctrl-C of the driver
        # is not held up by jobs that run elsewhere (they stay RUNNING in the study, for zenexp resume).
        ended: queue.Queue[tuple[int, JobReturn | None]] = queue.Queue()

        def start(number: int, overrides: list[str]) -> None:
            context = contextvars.copy_context()  # machine.sharing, a context variable, for the launch
            threading.Thread(
                target=lambda: ended.put((number, context.run(self._launched, number, overrides))),
                daemon=True,
            ).start()

        running = 0
        while True:
            while running < self.in_flight and (job := next_job()) is not None:
                start(*job)
                running += 1
            if not running:
                return
            self._ended(*ended.get())
            running -= 1

    def _launched(self, number: int, overrides: list[str]) -> JobReturn | None:
        try:
            return self.launch(number, overrides)
        except Exception as error:  # noqa: BLE001  (Hydra could not make the job: one line, the search goes on)
            log.error("trial %d could not start: %s", number, str(error).strip().splitlines()[0])
            return None

    def _ended(self, number: int, job: JobReturn | None) -> None:
        if job is None or job.status is not JobStatus.COMPLETED:
            self.failed += 1
            tell(self.study, number, "failed", None)
            return
        result = job.return_value
        tell(self.study, number, "pruned" if getattr(result, "pruned", False) else "finished", float(result))

    def _too_many_failures(self) -> bool:
        if self.stopped or self.failed <= self.failures_allowed:
            return self.stopped
        log.error(
            "%d trials failed, more than hydra.sweeper.max_failure_rate allows (%d): the search stops asking "
            "for trials; finish it with zenexp resume once the cause is fixed (failed trials are replaced)",
            self.failed,
            self.failures_allowed,
        )
        self.stopped = True
        return True
