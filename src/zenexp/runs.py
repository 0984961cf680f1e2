"""The task that runs one job, and continuing or repeating a recorded run from what its directory saved."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hydra_zen import launch, zen

from zenexp.checks import check_point, raise_problems, validate_job
from zenexp.configs import MainConfig
from zenexp.resuming import rerun_overrides, resume_overrides
from zenexp.train import RunResult, make_reproducible, train

#: The zen-wrapped task: validates the composed config, seeds, builds everything, then trains.
#: The config is resolved by the task itself, after validation has explained any broken interpolation.
task = zen(train, pre_call=[validate_job, make_reproducible], resolve_pre_call=False)


def resume(run_dir: str | Path, overrides: Sequence[str] = ()) -> RunResult:
    """Continue a run from its last checkpoint, in its own directory; `trainer.epochs=N` may extend it."""
    return launch_job(resume_overrides(run_dir, overrides))


def rerun(run_dir: str | Path) -> RunResult:
    """Run a recorded run again, in a new run directory, from the overrides it saved."""
    return launch_job(rerun_overrides(Path(run_dir)))


def launch_job(overrides: list[str]) -> RunResult:
    """One job through `hydra_zen.launch`, from the current directory, checked first as the CLI does (so
    a refusal is the CLI's one line, a `UserError`, even for mistakes Hydra meets while composing)."""
    raise_problems(check_point(overrides))
    result = launch(MainConfig, task, overrides=overrides, version_base="1.3").return_value
    assert isinstance(result, RunResult)
    return result
