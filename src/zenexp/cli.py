"""The command line: `zenexp [overrides]`, `zenexp -m ...`, `zenexp check ...` and `zenexp --help`.

Runs and sweeps go through Hydra's own `hydra.main`, after every job's overrides have been checked, so a
mistake costs one line and no run directory, and a sweep never starts half its jobs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin, get_type_hints

import hydra
from hydra._internal.utils import get_args_parser
from hydra.core.config_store import ConfigStore
from hydra_zen import store
from omegaconf import DictConfig, OmegaConf
from typing_extensions import Doc

from zenexp import UserError, compare, sweeps, task
from zenexp.configs import MainConfig
from zenexp.interrupts import Interrupted
from zenexp.runs import rerun, rerun_overrides, saved_overrides
from zenexp.tracking import SUMMARY_FILE
from zenexp.train import RunResult
from zenexp.validation import CONFIG_NAME, HYDRA_KEYS, check_point, describe_bounds, options, sweep_points

GROUPS = ("model", "dataset", "optim")
COMMANDS = ("check", "resume", "rerun", "compare")
USAGE = """\
usage: zenexp [group=option ...] [field=value ...]   train and record one run
       zenexp -m field=a,b [...]                     a sweep: one job per combination
       zenexp check [-m] [overrides ...]             check every job of a run or sweep; run nothing
       zenexp resume RUN_DIR [trainer.epochs=N]      continue a run from its last checkpoint
       zenexp rerun RUN_DIR                          run a recorded run again; compare its metrics
       zenexp compare DIR... [--sort M] [--png F]    runs or sweeps side by side: a table and curves
       zenexp --cfg job [overrides ...]              print the composed config; run nothing
       zenexp --hydra-help                           Hydra's own options
"""


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    store.add_to_hydra_store()  # configs a user's own module stored before calling main()
    command = args[0] if args and args[0] in COMMANDS else None
    try:
        if command == "check":
            sys.exit(check(args[1:]))
        if command == "rerun":
            sys.exit(rerun_command(args[1:]))
        if command == "compare":
            sys.exit(compare_command(args[1:]))
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


def run(args: list[str]) -> None:
    """Run or sweep with Hydra's own command line, after checking every job."""
    if "--help" in args or "-h" in args:
        print(help_text())
        return
    parsed = get_args_parser().parse_args(args)
    runs_jobs = not (parsed.cfg or parsed.info or parsed.hydra_help or parsed.shell_completion)
    # With HYDRA_FULL_ERROR=1 the job itself refuses the config, with the full traceback.
    if runs_jobs and os.environ.get("HYDRA_FULL_ERROR") != "1" and check(args, quiet=True):
        sys.exit(1)
    sys.argv = [sys.argv[0], *args]
    try:
        hydra.main(config_path=None, config_name=CONFIG_NAME, version_base="1.3")(_run)()
    finally:
        if sweeps.last_sweep_dir is not None:  # a sweep ran: summarise it, failed jobs included
            runs = sweeps.write_sweep_summary(sweeps.last_sweep_dir)
            finished = sum(run.status == "finished" for run in runs)
            print(
                f"\n{finished} of {len(runs)} jobs finished; {sweeps.last_sweep_dir / sweeps.SWEEP_SUMMARY_FILE}"
            )
            print(compare.table(runs))


def resume_args(args: Sequence[str]) -> list[str]:
    """`resume RUN_DIR [overrides]`: the run's own overrides, the new ones, and where to continue."""
    if not args or "=" in args[0]:
        raise UserError("usage: zenexp resume RUN_DIR [trainer.epochs=N]")
    run_dir, *overrides = args
    return [*saved_overrides(Path(run_dir)), *overrides, f"resume='{run_dir}'"]


def rerun_command(args: Sequence[str]) -> int:
    """`rerun RUN_DIR`: run it again in a new directory and say whether the metrics are the same."""
    if len(args) != 1:
        raise UserError("usage: zenexp rerun RUN_DIR")
    run_dir = Path(args[0])
    if check(rerun_overrides(run_dir), quiet=True):
        return 1
    result = rerun(run_dir)
    before = json.loads((run_dir / SUMMARY_FILE).read_text()) if (run_dir / SUMMARY_FILE).is_file() else {}
    changed = {k: (before.get(k), v) for k, v in result.metrics.items() if before.get(k) != v}
    if not changed:
        print(f"same metrics as {run_dir}: test_accuracy {result.metrics['test_accuracy']:.4f}")
        return 0
    print(
        f"metrics differ from {run_dir}:", *(f"  {k}: {a} -> {b}" for k, (a, b) in changed.items()), sep="\n"
    )
    return 1


def compare_command(args: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="zenexp compare", description="Compare runs from their own files.")
    parser.add_argument("paths", nargs="+", type=Path, help="run directories, or sweep directories")
    parser.add_argument(
        "--sort", default="test_accuracy", help="the metric to sort by (default test_accuracy)"
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
    print(compare.table(runs, options.sort, options.ascending))
    png = options.png or (options.paths[0] if len(options.paths) == 1 else Path.cwd()) / "curves.png"
    print(f"\ncurves: {compare.plot_curves(runs, png)}")
    return 0


def check(args: Sequence[str], quiet: bool = False) -> int:
    """Check every job that `args` would run; print the bad ones. 0 when all are valid."""
    parsed = get_args_parser().parse_args(list(args))
    overrides = list(parsed.overrides)
    if parsed.multirun and not any(o.startswith("hydra/sweeper=") for o in overrides):
        points = sweep_points(overrides)
    else:  # a single run, or a sweeper that chooses its own points: check what is fixed
        points = [overrides]
    failures = {i: problems for i, point in enumerate(points) if (problems := check_point(point))}
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
        if user_error is None or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        raise SystemExit(f"zenexp: error: {user_error}") from None


def _user_error(error: BaseException | None) -> UserError | None:
    """The UserError behind `error`, if any (Hydra wraps errors raised while instantiating)."""
    while error is not None and not isinstance(error, UserError):
        error = error.__cause__
    return error


# ---- --help ----------------------------------------------------------------------------------------------


def help_text() -> str:
    """Groups with their options, and every field with its type, default and description from the code."""
    defaults = {
        group: choice
        for item in MainConfig().defaults
        if isinstance(item, dict)
        for group, choice in item.items()
    }
    sections: list[tuple[str, list[tuple[str, str, str, str]]]] = []
    for group in GROUPS:
        for name in sorted(options(group), key=lambda name: name != defaults[group]):
            node = ConfigStore.instance().load(f"{group}/{name}.yaml").node
            sections.append((f"{group}={name}: {_summary(OmegaConf.get_type(node))}", _fields(node, group)))
    main_node = OmegaConf.structured(MainConfig)
    for name in ("trainer", "tracker"):
        sections.append(
            (f"{name}: {_summary(OmegaConf.get_type(main_node[name]))}", _fields(main_node[name], name))
        )
    sections.append(("top level:", [row for row in _fields(main_node, "") if row[0] == "seed"]))

    widths = [max(len(row[i]) for _, rows in sections for row in rows) for i in range(3)]
    lines = [USAGE, "groups (the default first):"]
    lines += [f"  {g:<8} {' | '.join(sorted(options(g), key=lambda n: n != defaults[g]))}" for g in GROUPS]
    for title, rows in sections:
        lines += ["", title]
        for path, kind, default, doc in rows:
            lines.append(
                f"  {path:<{widths[0]}}  {kind:<{widths[1]}}  {default:<{widths[2]}}  {doc}".rstrip()
            )
    return "\n".join(lines)


def _summary(schema: Any) -> str:
    return str((schema.__doc__ or "").strip().splitlines()[0])


def _fields(node: DictConfig, prefix: str) -> list[tuple[str, str, str, str]]:
    """(path, type, default, description) of each field a user may set."""
    values = OmegaConf.to_container(node, resolve=False, enum_to_str=True)
    assert isinstance(values, dict)
    fixed = values.get("_zen_exclude", [])  # zen_meta: facts of the data, read by the models
    rows: list[tuple[str, str, str, str]] = []
    for name, hint in get_type_hints(OmegaConf.get_type(node), include_extras=True).items():
        if name.startswith("_") or name in HYDRA_KEYS:
            continue
        base, *extras = get_args(hint) if get_origin(hint) is Annotated else (hint,)
        doc = next((extra.documentation for extra in extras if isinstance(extra, Doc)), "")
        value = values.get(name)
        default = value if isinstance(value, str) else json.dumps(value)
        path = f"{prefix}.{name}" if prefix else name
        if name in fixed:
            rows.append((path, "fixed", default, "what the dataset holds; the models read it"))
        else:
            rows.append((path, f"{_type_label(base)} {describe_bounds(extras)}".strip(), default, doc))
    return rows


def _type_label(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")
