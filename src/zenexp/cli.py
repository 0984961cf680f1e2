"""The command line: `zenexp [overrides]`, `zenexp -m ...`, `zenexp check|resume|rerun|compare|eval ...` and
`zenexp --help`.

Runs and sweeps go through Hydra's own `hydra.main`, after every job's overrides have been checked, so a
mistake costs one line and no run directory, and a sweep never starts half its jobs.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException, OverrideParseException
from hydra.types import RunMode
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from zenexp import UserError, compat, task
from zenexp.checks.overrides import sweep_points
from zenexp.checks.points import check_points
from zenexp.configs import add_to_hydra_store, usercode
from zenexp.configs.schema import CONFIG_NAME, compose_config, plain
from zenexp.errors import raise_problems
from zenexp.helptext import help_text
from zenexp.parallel import machine
from zenexp.run import rundir
from zenexp.run.evaluation import confusion_table
from zenexp.run.interrupts import Interrupted
from zenexp.run.resume import rerun_overrides, resume_overrides
from zenexp.run.task import EVAL_OVERRIDES, evaluate_run, launch_job
from zenexp.run.train import RunResult
from zenexp.sweep import compare, ledger, records, search

COMMANDS = ("check", "resume", "rerun", "compare", "eval")
GRID = "hydra/sweeper=grid"  # zenexp's default sweeper: Hydra's basic one, with a ledger


def main(argv: Sequence[str] | None = None) -> None:
    if (nested := usercode.started_while_importing()) is not None:
        sys.exit(f"zenexp: error: {nested}")
    args = list(sys.argv[1:] if argv is None else argv)
    add_to_hydra_store()  # configs a user's own module stored before calling main()
    try:
        try:
            dispatch(args)
        finally:
            sys.stdout.flush()  # here, where a closed pipe can still be handled
    except BrokenPipeError:  # `zenexp --help | head`: the reader has gone, and so does zenexp, quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's own recipe
        sys.exit(1)


def dispatch(args: list[str]) -> None:
    command = args[0] if args and args[0] in COMMANDS else None
    try:
        if command == "check":
            sys.exit(check(args[1:]))
        if command == "rerun":
            sys.exit(rerun_command(args[1:]))
        if command == "compare":
            sys.exit(compare_command(args[1:]))
        if command == "eval":
            sys.exit(eval_command(args[1:]))
        if command == "resume":
            args = resume_args(args[1:])
        run(args)
    except UserError as error:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        _print_problems([str(error)])
        sys.exit(1)
    except Interrupted as stop:
        print(
            f"zenexp: {stop}; checkpoint saved. Continue with: zenexp resume {stop.run_dir}", file=sys.stderr
        )
        sys.exit(stop.exit_status)
    except KeyboardInterrupt as stop:  # before training began, or a second signal: nothing was saved
        print(f"zenexp: {str(stop) or 'stopped by SIGINT'}; no checkpoint was saved", file=sys.stderr)
        sys.exit(128 + signal.SIGINT)


def run(args: list[str]) -> None:
    """Run or sweep with Hydra's own command line, after checking every job."""
    if "--help" in args or "-h" in args:
        print(help_text())
        return
    parsed = compat.hydra_argument_parser().parse_args(args)
    runs_jobs = not (parsed.cfg or parsed.info or parsed.hydra_help or parsed.shell_completion)
    if runs_jobs and check(args, quiet=True):
        sys.exit(1)
    sys.argv = [sys.argv[0], *args]
    records.last_sweep_dir = None  # a sweep that an earlier main() of this process ran is not this one's
    try:
        hydra.main(config_path=None, config_name=CONFIG_NAME, version_base="1.3")(_run)()
    finally:
        sweep_dir = records.last_sweep_dir
        # A sweep that got as far as its ledger or a job: summarise it, failed jobs included (one refused
        # before that leaves its directory empty, for the same command again).
        planned = (
            sweep_dir is not None
            and sweep_dir.is_dir()
            and any(path.name == rundir.SWEEP_FILE or path.is_dir() for path in sweep_dir.iterdir())
        )
        if planned:
            assert sweep_dir is not None
            runs = records.write_sweep_summary(sweep_dir)
            if runs:  # none: refused before its first job (the error says why)
                print(f"\n{sweep_outcome(runs)}; {sweep_dir / rundir.SWEEP_SUMMARY_FILE}")
                print(compare.table(runs))
    if planned and (not runs or any(run.status not in records.DONE for run in runs)):
        print(f"finish the sweep with: zenexp resume {sweep_dir}", file=sys.stderr)
        sys.exit(1)


def sweep_outcome(runs: Sequence[records.RunRecord]) -> str:
    """`3 of 4 jobs finished (1 failed)`"""
    counts = Counter(run.status for run in runs)
    others = ", ".join(f"{counts[status]} {status}" for status in records.STATUSES[1:] if counts[status])
    return f"{counts['finished']} of {len(runs)} jobs finished" + (f" ({others})" if others else "")


def resume_args(args: Sequence[str]) -> list[str]:
    """`resume RUN_DIR [overrides]`: the run's own overrides, the new ones, and where to continue; `resume
    SWEEP_DIR [hydra overrides]`: the sweep's own command, in its directory."""
    if not args or "=" in args[0]:
        raise UserError("usage: zenexp resume RUN_DIR [trainer.epochs=N], or zenexp resume SWEEP_DIR")
    path, *overrides = args
    if (Path(path) / rundir.SWEEP_FILE).is_file():
        return ledger.resume_overrides(Path(path), overrides)
    return resume_overrides(path, overrides)


def rerun_command(args: Sequence[str]) -> int:
    """`rerun RUN_DIR`: run it again in a new directory and say whether the metrics are the same."""
    if len(args) != 1:
        raise UserError("usage: zenexp rerun RUN_DIR")
    run_dir = Path(args[0])
    overrides = rerun_overrides(run_dir)
    if check(overrides, quiet=True):
        return 1
    result = launch_job(overrides)
    summary = run_dir / rundir.SUMMARY_FILE
    before = rundir.read_json(summary) if summary.is_file() else {}
    changed = {k: (before.get(k), v) for k, v in result.metrics.items() if before.get(k) != v}
    if not changed:
        print(
            f"same metrics as {run_dir}: val_accuracy {result.metrics['val_accuracy']:.4f}, "
            f"test_accuracy {result.metrics['test_accuracy']:.4f}"
        )
        return 0
    print(
        f"metrics differ from {run_dir}:", *(f"  {k}: {a} -> {b}" for k, (a, b) in changed.items()), sep="\n"
    )
    return 1


def compare_command(args: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="zenexp compare", description="Compare runs from their own files.")
    parser.add_argument("paths", nargs="+", type=Path, help="run directories, or sweep directories")
    parser.add_argument(
        "--sort", help="the metric to sort by (default val_accuracy: what chose each run's model)"
    )
    parser.add_argument("--ascending", action="store_true", help="smallest first (for a loss)")
    parser.add_argument("--png", type=Path, help="where to draw the curves (default: in the one sweep given)")
    options = parser.parse_args(args)
    missing = [str(path) for path in options.paths if not path.is_dir()]
    if missing:
        raise UserError(f"no such directory: {', '.join(missing)}")
    runs = compare.records(options.paths)
    if not runs:
        raise UserError(f"no runs in {', '.join(map(str, options.paths))}")
    known = sorted({name for run in runs for name in run.metrics if "/" not in name})
    if options.sort and known and not any(options.sort in run.metrics for run in runs):
        raise UserError(f"--sort {options.sort}: no run has that metric; choose one of {', '.join(known)}")
    print(compare.table(runs, options.sort or "val_accuracy", options.ascending))
    png = options.png or (options.paths[0] if len(options.paths) == 1 else Path.cwd()) / "curves.png"
    print(f"\ncurves: {compare.plot_curves(runs, png)}")
    for path in options.paths:  # a search's own plots, beside the curves
        try:
            drawn = search.plot_study(path, png.parent) if (path / rundir.SWEEP_FILE).is_file() else []
        except UserError as error:
            print(f"zenexp: the search's plots are not drawn: {error}", file=sys.stderr)
            continue
        for plot in drawn:
            print(f"search: {plot}")
    return 0


def eval_command(args: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="zenexp eval",
        description="Evaluate a run's saved model on the test split: accuracy overall and per class, the "
        "confusion matrix; written to eval.json and confusion_matrix.png in the run directory.",
    )
    parser.add_argument("run_dir", type=Path, help="the run directory")
    parser.add_argument(
        "--checkpoint",
        choices=("best", "last"),
        default="best",
        help="best: the model kept, by validation accuracy (default; summary.json's test_accuracy is its); "
        "last: the model of the last epoch",
    )
    parser.epilog = f"overrides (optional, after RUN_DIR): only {', '.join(EVAL_OVERRIDES)}"
    options, overrides = parser.parse_known_args(args)
    if unknown := [arg for arg in overrides if arg.startswith("-")]:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    done = evaluate_run(options.run_dir, options.checkpoint, overrides)
    result = done.evaluation
    images = sum(map(sum, result.confusion))
    print(
        f"{done.checkpoint} ({done.epochs_finished} epochs finished, step {done.step}) on the {images} test "
        f"images: accuracy {result.accuracy:.4f}, loss {result.loss:.4f}\n"
    )
    print(confusion_table(result, done.classes))
    print(f"\nwritten: {done.json}, {done.png}")
    return 0


def fixed_overrides(overrides: list[str]) -> list[str]:
    """A search's overrides without those it samples (`optim.lr=interval(0.01, 0.1)`)."""
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except OverrideParseException:
        return overrides  # the check names the line that does not parse
    return [str(o.input_line) for o in parsed if not o.is_sweep_override()]


def search_points(overrides: list[str]) -> list[list[str]]:
    """The jobs that stand for a search: its fixed overrides, then each with one sampled key at one of its
    values (each choice, each end of a range or interval). A search's own settings that are wrong (its
    direction, storage, a space its sampler cannot take) are one line."""
    fixed = fixed_overrides(overrides)
    try:
        hydra = compose_config(fixed, with_hydra=True).hydra
    except (HydraException, OmegaConfBaseException):
        return [fixed]  # the check says why
    written = plain(hydra)
    sweeper = written.get("sweeper") or {}
    if sweeper.get("_target_") != search.SWEEPER:
        return [fixed]
    raise_problems(search.installed_problems() or search.settings_problems(written))
    space, kept = search.search_space(sweeper.get("params") or {}, overrides)
    raise_problems(search.sampler_problems(str((sweeper.get("sampler") or {}).get("_target_")), space))
    points = [kept]
    for key, distribution in space.items():
        points += [[*kept, *search.trial_overrides({key: value})] for value in search.ends(distribution)]
    return points


def check(args: Sequence[str], quiet: bool = False) -> int:
    """Check every job that `args` would run; print the bad ones. 0 when all are valid."""
    parsed = compat.hydra_argument_parser().parse_args(list(args))
    overrides = list(parsed.overrides)
    searched = any(o.startswith("hydra/sweeper=") and o != GRID for o in overrides)
    if parsed.multirun and not searched:
        points = sweep_points(overrides)
    elif searched:  # a sweeper that chooses its own points: what is fixed, and the ends of what it samples
        points = search_points(overrides)
    else:
        points = [overrides]
    with machine.sharing(_jobs_at_once(points, searched) if parsed.multirun else 1):
        failures = check_points(points)
    if quiet and failures and os.environ.get("HYDRA_FULL_ERROR") == "1":
        raise_problems(next(iter(failures.values())))  # with the traceback asked for
    if len(points) == 1 and failures:
        _print_problems(failures[0])
    elif failures:
        print(f"zenexp: error: {len(failures)} of {len(points)} jobs are invalid:", file=sys.stderr)
        for i, problems in failures.items():
            print(f"  {' '.join(points[i]) or '(defaults)'}", file=sys.stderr)
            print("\n".join(f"    {problem}" for problem in problems), file=sys.stderr)
    elif not quiet:
        print(f"all {len(points)} job{'s' if len(points) > 1 else ''} valid")
    return 1 if failures else 0


def _jobs_at_once(points: list[list[str]], searched: bool) -> int:
    """How many of a sweep's jobs its launcher runs at once (a search runs its sweeper's `n_jobs` at a time)."""
    try:
        hydra = compose_config(points[0], with_hydra=True).hydra
    except (HydraException, OmegaConfBaseException):
        return 1  # the check says why
    batch = hydra.sweeper.get("n_jobs" if searched else "max_batch_size") or len(points)
    jobs = batch if searched else min(batch, len(points))
    return machine.jobs_at_once(hydra.launcher, jobs)


def _print_problems(problems: Sequence[str]) -> None:
    if len(problems) == 1:
        print(f"zenexp: error: {problems[0]}", file=sys.stderr)
    else:
        print(f"zenexp: error: {len(problems)} problems:", file=sys.stderr)
        print("\n".join(f"  {problem}" for problem in problems), file=sys.stderr)


def _run(cfg: DictConfig) -> RunResult:
    try:
        return task(cfg)
    except Exception as error:
        user_error = _user_error(error)
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            # One line in the sweep's console and the job's status.json (its log has the traceback); the
            # other jobs run on.
            raise records.JobFailed(records.one_line(user_error or error)) from error
        if user_error is None:
            raise
        raise SystemExit(f"zenexp: error: {user_error}") from None


def _user_error(error: BaseException | None) -> UserError | None:
    """The UserError behind `error`, if any (Hydra wraps errors raised while instantiating)."""
    while error is not None and not isinstance(error, UserError):
        error = error.__cause__
    return error
