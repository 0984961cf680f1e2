"""Training progress: a bar when stderr is a terminal (drawn there), plain log lines (at most one per interval)
otherwise."""

from __future__ import annotations

import logging
import sys
import time
from types import TracebackType

log = logging.getLogger("zenexp")


class Progress:
    def __init__(
        self, description: str, total: int, completed: int = 0, interval_s: float = 10.0, shown: bool = True
    ) -> None:
        self.description = description
        self.shown = shown
        self.total = total
        self.interval_s = interval_s
        self._last_line = time.monotonic()
        self._bar = None
        if shown and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                TextColumn("loss {task.fields[loss]}"),
                transient=True,
                console=Console(stderr=True),  # the terminal it checked: stdout may be a file or a pipe
            )
            self._task = self._bar.add_task(description, total=total, completed=completed, loss="-")

    def update(self, done: int, loss: float | None = None) -> None:
        """Report `done` of `total` steps, with the latest training loss if there is one."""
        shown_loss = "-" if loss is None else f"{loss:.4f}"
        if self._bar is not None:
            self._bar.update(self._task, completed=done, loss=shown_loss)
        elif self.shown and time.monotonic() - self._last_line >= self.interval_s:
            self._last_line = time.monotonic()
            log.info("%s: step %d/%d, loss %s", self.description, done, self.total, shown_loss)

    def __enter__(self) -> Progress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(
        self,
        error_type: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
