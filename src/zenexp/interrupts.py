"""Ctrl-C and SIGTERM stop training between two steps, so that a checkpoint can be saved first."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """Training stopped on a signal after saving a checkpoint; `exit_status` is the shell's 128 + signal."""

    def __init__(self, signum: int, run_dir: Path) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum
        self.run_dir = run_dir
        self.exit_status = 128 + signum


@contextmanager
def deferred_signals() -> Iterator[Callable[[], int | None]]:
    """Within the block, SIGINT and SIGTERM are noted rather than raised; the yielded function returns the
    signal received, if any. A second signal stops at once. Outside the main thread this does nothing."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return

    def note(signum: int, frame: FrameType | None) -> None:
        if received:
            raise KeyboardInterrupt
        received.append(signum)

    previous = {signum: signal.signal(signum, note) for signum in SIGNALS}
    try:
        yield lambda: received[0] if received else None
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
