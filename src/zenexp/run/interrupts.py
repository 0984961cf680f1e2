"""Ctrl-C, SIGTERM and a scheduler's preemption signal stop training between two steps, so that a checkpoint
can be saved first."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

# What Slurm sends before a time limit or a preemption, for submitit (its default, SUBMITIT_PREEMPT_SIGNAL).
PREEMPTION = signal.SIGUSR2


class Interrupted(KeyboardInterrupt):
    """Training stopped on a signal after saving a checkpoint; `exit_status` is the shell's 128 + signal."""

    def __init__(self, signum: int, run_dir: Path) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum
        self.run_dir = run_dir
        self.exit_status = 128 + signum


@dataclass
class Signals:
    """The signal received, if any, and the handlers the block replaced."""

    received: list[int] = field(default_factory=list)
    replaced: dict[int, Any] = field(default_factory=dict)

    def __call__(self) -> int | None:
        return self.received[0] if self.received else None

    def hand_over(self, signum: int) -> None:
        """On the preemption signal, call the handler it had before (submitit's: it requeues the job and
        exits)."""
        handler = self.replaced.get(signum)
        if signum == PREEMPTION and callable(handler):
            handler(signum, None)


@contextmanager
def deferred_signals() -> Iterator[Signals]:
    """Within the block, SIGINT and SIGTERM are noted rather than raised, and so is the preemption signal
    when someone handles it (submitit, in a Slurm job: it leaves SIGTERM alone then, as submitit ignores the
    SIGTERM Slurm sends before preempting). Call the yielded object for the signal received, if any. A
    second signal stops at once. Outside the main thread this does nothing."""
    signals = Signals()
    if threading.current_thread() is not threading.main_thread():
        yield signals
        return

    def note(signum: int, frame: FrameType | None) -> None:
        if signals.received:
            raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")
        signals.received.append(signum)

    taken: list[int] = [signal.SIGINT]
    if callable(signal.getsignal(PREEMPTION)):
        taken.append(PREEMPTION)
    else:
        taken.append(signal.SIGTERM)
    signals.replaced = {signum: signal.signal(signum, note) for signum in taken}
    try:
        yield signals
    finally:
        for signum, handler in signals.replaced.items():
            signal.signal(signum, handler)
