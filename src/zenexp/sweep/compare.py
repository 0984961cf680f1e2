"""`zenexp compare`: runs side by side, from their own files (no network, no SwanLab login)."""

from __future__ import annotations

import io
import math
from pathlib import Path

from zenexp.run.rundir import SWEEP_FILE, read_metrics, write_atomic
from zenexp.sweep.records import RunRecord, read_run, run_dirs, sweep_runs

# Runs are ranked by validation accuracy (what chose their models); test accuracy is shown, not ranked by.
SHOWN_METRICS = ("val_accuracy", "test_accuracy", "train_loss")


def records(paths: list[Path]) -> list[RunRecord]:
    """The runs of each path: a run directory, or every job of a sweep directory (its ledger's too)."""
    found: list[RunRecord] = []
    for path in paths:
        if (path / SWEEP_FILE).is_file():
            found += sweep_runs(path)
        else:
            found += [read_run(run_dir) for run_dir in run_dirs([path])]
    return found


def varying_overrides(runs: list[RunRecord]) -> list[list[str]]:
    """Each run's overrides without those every run shares: what tells the runs apart."""
    shared = set.intersection(*(set(run.overrides) for run in runs)) if len(runs) > 1 else set()
    return [[o for o in run.overrides if o not in shared] for run in runs]


def table(runs: list[RunRecord], sort_by: str = "val_accuracy", ascending: bool = False) -> str:
    """Overrides against final metrics, best first by `sort_by`; runs without that metric last."""
    labels = dict(zip((run.run_dir for run in runs), varying_overrides(runs), strict=True))

    def key(run: RunRecord) -> tuple[bool, float]:
        value = run.metrics.get(sort_by, math.nan)
        return math.isnan(value), value if ascending else -value

    ordered = sorted(runs, key=key)
    metrics = [sort_by, *(m for m in SHOWN_METRICS if m != sort_by)]
    header = ["run", "status", *metrics, "overrides"]
    rows = [
        [
            run.run_dir.name,
            run.status,
            *(f"{run.metrics[m]:.4f}" if m in run.metrics else "-" for m in metrics),
            " ".join(labels[run.run_dir]) or "(defaults)",
        ]
        for run in ordered
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1]
        for row in [header, *rows]
    ]
    failures = [f"{run.run_dir.name}: {run.error}" for run in ordered if run.error]
    return "\n".join([*lines, *(["", "failed:", *failures] if failures else [])])


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def plot_curves(runs: list[RunRecord], png: Path) -> Path:
    """Training loss by step and validation accuracy by epoch, one line per run, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    figure, (loss_axes, accuracy_axes) = plt.subplots(1, 2, figsize=(12, 4.5))
    for run, label in zip(runs, varying_overrides(runs), strict=True):
        records = read_metrics(run.run_dir)
        name = " ".join(label) or run.run_dir.name
        steps = [(r["step"], r["train/loss"]) for r in records if _number(r.get("train/loss"))]
        epochs = [
            (r["epoch"], r["val/accuracy"])
            for r in records
            if _number(r.get("val/accuracy")) and _number(r.get("epoch"))
        ]
        if steps:
            loss_axes.plot(*zip(*steps, strict=True), label=name)
        if epochs:
            accuracy_axes.plot(*zip(*epochs, strict=True), marker="o", label=name)
    loss_axes.set(title="training loss", xlabel="step", ylabel="train/loss")
    accuracy_axes.set(title="validation accuracy", xlabel="epoch", ylabel="val/accuracy")
    accuracy_axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    if accuracy_axes.get_legend_handles_labels()[0]:  # no run finished an epoch: no curve, no legend
        accuracy_axes.legend(fontsize="small")
    figure.tight_layout()
    picture = io.BytesIO()
    figure.savefig(picture, format="png", dpi=100)
    plt.close(figure)
    write_atomic(png, picture.getvalue())  # never through a link someone left in a shared folder
    return png
