"""`ResumePlan`: a resumed run's checkpoints read once by the checks and handed to the task, never served
stale, and let go of once loaded."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from zenexp.run.resume import read_plan


def test_a_plan_is_read_once_until_its_files_change_and_released_once_loaded(quick_run: Path) -> None:
    plan = read_plan(quick_run)
    assert read_plan(quick_run) is plan and plan.unchanged()  # the checks and the task share one reading
    assert plan.last is not None and plan.kept is not None and plan.position["epoch"] == 2

    last = quick_run / "checkpoints" / "last.pt"
    shutil.copy(last, last.with_suffix(".new"))
    os.replace(last.with_suffix(".new"), last)  # written again, as a checkpoint always is: renamed over
    assert not plan.unchanged()
    again = read_plan(quick_run)
    assert again is not plan and again.unchanged()

    again.release()
    assert again.last is None and again.kept is None  # whoever still holds it holds no tensors
    assert read_plan(quick_run) is not again  # nor does the cache
