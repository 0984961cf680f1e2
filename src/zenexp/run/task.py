"""The task that runs one job, and continuing, repeating or evaluating a recorded run from what its
directory saved."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import OverrideParseException
from hydra_zen import instantiate, launch, zen
from omegaconf import DictConfig

from zenexp.checks.guard import validate_job
from zenexp.checks.points import check_point
from zenexp.configs import MainConfig, TrackerConf, TrackerMode
from zenexp.configs.schema import compose_config
from zenexp.data import loading
from zenexp.data.datasets import ImageData
from zenexp.errors import UserError, raise_problems
from zenexp.parallel import machine
from zenexp.run import checkpoint, evaluation, rundir
from zenexp.run.provenance import recorded_threads
from zenexp.run.resume import THREADS, config_changes, rerun_overrides, resume_overrides, saved_overrides
from zenexp.run.train import RunResult, make_reproducible, train
from zenexp.tracking.recorder import Recorder
from zenexp.tracking.settings import TAGS_MAX


def task(cfg: DictConfig) -> RunResult:
    """The job Hydra runs: every check of the composed config (which reads the run a resume continues into
    its `ResumePlan`), seeding, then everything built from the config (by hydra-zen's `zen`; the config is
    not resolved in place, so an escaped `\\${...}` stays text) and trained from that plan."""
    plan = validate_job(cfg)
    make_reproducible(cfg)
    return zen(functools.partial(train, plan=plan), exclude="plan", resolve_pre_call=False)(cfg)


#: What `zenexp eval` may change: where the data is read, where the model runs, where SwanLab records.
#: Never the model or the split: the test images must be the ones the run never chose by.
EVAL_OVERRIDES = (
    "dataset.root",
    "dataset.download",
    "dataset.in_memory",
    "trainer.device",
    "trainer.loader_workers",
    "tracker.mode",
    "tracker.project",
)


def resume(run_dir: str | Path, overrides: Sequence[str] = ()) -> RunResult:
    """Continue a run from its last checkpoint, in its own directory; `trainer.epochs=N` may extend it."""
    return launch_job(resume_overrides(run_dir, overrides))


def rerun(run_dir: str | Path) -> RunResult:
    """Run a recorded run again, in a new run directory, from the overrides it saved and with its thread
    count."""
    return launch_job(rerun_overrides(Path(run_dir)))


def launch_job(overrides: list[str]) -> RunResult:
    """One job through `hydra_zen.launch`, from the current directory, checked first as the CLI does (so
    a refusal is the CLI's one line, a `UserError`, even for mistakes Hydra meets while composing)."""
    raise_problems(check_point(overrides))
    result = launch(MainConfig, task, overrides=overrides, version_base="1.3").return_value
    assert isinstance(result, RunResult)
    return result


@dataclass(frozen=True)
class EvalResult:
    """A saved model's evaluation on the test split, and where it was written."""

    evaluation: evaluation.Evaluation
    classes: tuple[str, ...]
    checkpoint: Path
    epochs_finished: int
    step: int  # the optimizer steps the model has had
    json: Path
    png: Path


def evaluate_run(
    run_dir: str | Path, checkpoint_name: str = "best", overrides: Sequence[str] = ()
) -> EvalResult:
    """Evaluate a run's saved model (`best`: the model kept, whose test accuracy `summary.json` reports;
    or `last`) on the test split; write `eval.json` (`eval_last.json`) and the confusion matrix's picture
    in the run directory, and record both in a SwanLab run unless `tracker.mode=disabled`."""
    run_dir = Path(run_dir)
    if checkpoint_name not in ("best", "last"):
        raise UserError(f"--checkpoint {checkpoint_name}: choose best (the model kept) or last")
    _check_eval_overrides(overrides)
    point = [*saved_overrides(run_dir, "eval"), *overrides]
    raise_problems(check_point(point, with_hydra=False))
    cfg = compose_config(point)
    changes = config_changes(run_dir, cfg, {*EVAL_OVERRIDES, THREADS, "resume"})
    if changes:
        listed = "\n".join(f"    {change}" for change in changes)
        raise UserError(f"{run_dir}: the config its overrides give today differs from the run's:\n{listed}")
    path = run_dir / rundir.CHECKPOINT_DIR / (rundir.BEST if checkpoint_name == "best" else rundir.LAST)
    if not path.is_file():
        raise UserError(f"{path}: no such checkpoint; the run has not finished an epoch")
    state = checkpoint.read(path, to_resume=False)
    device = machine.resolve_device(cfg.trainer.device)
    model = instantiate(cfg.model)
    try:
        model.load_state_dict(state["model"])
    except Exception as error:  # noqa: BLE001  (shapes, keys, not a mapping: torch raises many kinds)
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UserError(f"{path}: cannot evaluate it: it does not fit the run's model ({detail})") from error
    threads = machine.choose_threads(cfg.trainer.num_threads, 1, recorded_threads(run_dir))
    with machine.torch_threads(threads.count):
        data: ImageData = instantiate(cfg.dataset)()
        _check_classes(run_dir, data.classes)
        reader = loading.Reader(data, loading.choose(data, cfg.trainer.loader_workers, 1), device)
        result = evaluation.evaluate(model.to(device), reader.normalised_batches("test"), data.classes)
    position = state["position"]
    epochs, step = position["epoch"] - 1, position["step"]  # epochs finished; steps of the model
    json_path, png = (run_dir / name for name in rundir.eval_files(checkpoint_name))
    record = {
        "checkpoint": str(path.relative_to(run_dir)),
        "epochs_finished": epochs,
        "step": step,
        "overrides": list(overrides),
        **result.metrics("test"),
        "classes": list(data.classes),
        "confusion_matrix": result.confusion,
    }
    rundir.write_json(json_path, record)
    title = f"{run_dir.name}, {path.name} (step {step}): test split"
    rundir.write_atomic(png, evaluation.confusion_png(result, data.classes, title))
    tracker = instantiate(cfg.tracker)
    assert isinstance(tracker, TrackerConf)
    if tracker.mode is not TrackerMode.disabled:
        name = f"eval {position['experiment_name']} ({path.name})"
        tags = [*tracker.tags, "eval"] if len(tracker.tags) < TAGS_MAX else list(tracker.tags)
        settings = dataclasses.replace(tracker, tags=tags, description=f"evaluation of {run_dir}")
        with Recorder(settings, cfg, run_dir, name, metrics_file=False) as recorder:
            recorder.log(result.metrics("test"), step)
            recorder.log_image("test/confusion_matrix", png, step)
    return EvalResult(result, data.classes, path, epochs, step, json_path, png)


def _check_classes(run_dir: Path, classes: tuple[str, ...]) -> None:
    """The data's classes are those the run was tested on (`test_accuracy/<name>` in summary.json), in their
    order: a class folder renamed since would label every row of the table wrongly."""
    summary = run_dir / rundir.SUMMARY_FILE
    metrics = rundir.read_json(summary) if summary.is_file() else {}
    recorded = [key.split("/", 1)[1] for key in metrics if key.startswith("test_accuracy/")]
    if recorded and recorded != list(classes):
        raise UserError(
            f"{run_dir}: the run was trained on the classes {', '.join(recorded)}, but its data now holds "
            f"{', '.join(classes)}; evaluate it on the data it was trained on"
        )


def _check_eval_overrides(overrides: Sequence[str]) -> None:
    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except OverrideParseException as error:
        raise UserError(str(error).splitlines()[0]) from error
    for override in parsed:
        if override.key_or_group not in EVAL_OVERRIDES or override.package is not None:
            raise UserError(
                f"zenexp eval: {override.input_line}: only {', '.join(EVAL_OVERRIDES)} may change (the model and "
                f"the test split are the run's own)"
            )
