"""The task that runs one job, and continuing or repeating a recorded run from what its directory saved."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hydra_zen import launch, zen

from zenexp.configs import MainConfig, add_to_hydra_store
from zenexp.errors import UserError
from zenexp.provenance import RUN_FILE, read_run_file
from zenexp.train import RunResult, make_reproducible, train
from zenexp.validation import compose_config, config_changes, options, validate_job

#: The zen-wrapped task: validates the composed config, seeds, builds everything, then trains.
#: The config is resolved by the task itself, after validation has explained any broken interpolation.
task = zen(train, pre_call=[validate_job, make_reproducible], resolve_pre_call=False)


def saved_overrides(run_dir: Path) -> list[str]:
    """The overrides the run last ran with (those of its latest resume, if any), `resume=` aside."""
    add_to_hydra_store()  # configs a user's module stored since zenexp was imported
    if not (run_dir / RUN_FILE).is_file():
        raise UserError(f"{run_dir}: not a zenexp run directory (no {RUN_FILE})")
    info = read_run_file(run_dir)
    if info.get("built_in_python"):
        raise UserError(
            f"{run_dir} was started from a MainConfig built in Python, which its overrides alone do not repeat; "
            f"launch the same config again (to continue it, with overrides=['resume={run_dir}'])"
        )
    for choice, module in info.get("registered_by", {}).items():
        group, _, option = choice.partition("=")
        if option not in options(group):
            raise UserError(
                f"{run_dir} used {choice}, which module {module} registers; run zenexp from a script that "
                f"imports {module} (see the README), or import it before calling zenexp"
            )
    overrides = info["resumed"][-1]["overrides"] if info["resumed"] else info["overrides"]
    return [override for override in overrides if not override.startswith("resume=")]


def resume_overrides(run_dir: str | Path, overrides: Sequence[str] = ()) -> list[str]:
    """The run's own overrides, the new ones, and where to continue."""
    return [*saved_overrides(Path(run_dir)), *overrides, f"resume='{run_dir}'"]


def resume(run_dir: str | Path, overrides: Sequence[str] = ()) -> RunResult:
    """Continue a run from its last checkpoint, in its own directory; `trainer.epochs=N` may extend it."""
    return launch_job(resume_overrides(run_dir, overrides))


def rerun_overrides(run_dir: Path) -> list[str]:
    """The overrides that repeat a run; refused when the code's defaults have changed since."""
    overrides = saved_overrides(run_dir)
    changes = config_changes(run_dir, compose_config(overrides), {"resume"})
    if changes:
        listed = "\n".join(f"    {change}" for change in changes)
        raise UserError(f"{run_dir}: the config these overrides give today differs from the run's:\n{listed}")
    return overrides


def rerun(run_dir: str | Path) -> RunResult:
    """Run a recorded run again, in a new run directory, from the overrides it saved."""
    return launch_job(rerun_overrides(Path(run_dir)))


def launch_job(overrides: list[str]) -> RunResult:
    """One job through `hydra_zen.launch`, from the current directory."""
    result = launch(MainConfig, task, overrides=overrides, version_base="1.3").return_value
    assert isinstance(result, RunResult)
    return result
