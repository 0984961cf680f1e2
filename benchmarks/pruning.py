"""Pruning: the same search with and without a pruner, side by side: trials, epochs trained, wall time, and
the best trial each found.

    python benchmarks/pruning.py            # about 3 minutes on 2 CPU cores
    python benchmarks/pruning.py --quick    # 5 trials of 2 epochs, to check the script itself

Each search is `python -m zenexp -m hydra/sweeper=lr_model_search ...` as a user runs it: TPE (seed 0, 4
start-up trials) over the learning rate and the model, on digits, tracker disabled. The pruned one adds
`hydra/sweeper/pruner=median` (the median of earlier trials at the same epoch; its first 4 trials are never
pruned). TPE learns from pruned trials too, so the two searches may try
different trials after the first 4: the best value is the honest comparison, not the trial numbers.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna

SEARCH = [
    "-m",
    "hydra/sweeper=lr_model_search",
    "dataset=digits",
    "trainer.batch_size=32",
    "tracker.mode=disabled",
]
PRUNER = ["hydra/sweeper/pruner=median", "hydra.sweeper.pruner.n_startup_trials=4"]


def search(folder: Path, trials: int, epochs: int, *more: str) -> dict[str, object]:
    """Run one search in `folder`; what it did, read back from its study and run directories."""
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "zenexp",
            *SEARCH,
            f"hydra.sweeper.n_trials={trials}",
            f"trainer.epochs={epochs}",
            f"hydra.sweep.dir={folder}",
            *more,
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        sys.exit(f"the search failed:\n{done.stderr}")
    wall = time.perf_counter() - started
    study = optuna.load_study(study_name="zenexp", storage=f"sqlite:///{folder / 'optuna.db'}")
    epochs_trained = sum(
        json.loads((job / "summary.json").read_text())["epochs"] for job in folder.glob("[0-9]*")
    )
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    best = study.best_trial
    return {
        "trials": len(study.trials),
        "pruned": pruned,
        "epochs": epochs_trained,
        "wall": wall,
        "best": f"{best.value:.4f} (trial {best.number}: lr {best.params['optim.lr']:.4g}, {best.params['model']})",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 trials of 2 epochs")
    options = parser.parse_args()
    trials, epochs = (5, 2) if options.quick else (16, 10)
    print(f"lr_model_search on digits: {trials} trials of up to {epochs} epochs, TPE seed 0")
    print(f"{'':14} {'trials':>6} {'pruned':>6} {'epochs':>6} {'wall s':>7}  best val_accuracy")
    with tempfile.TemporaryDirectory() as scratch:
        for name, more in (("no pruner", []), ("median pruner", PRUNER)):
            row = search(Path(scratch) / name.replace(" ", "_"), trials, epochs, *more)
            print(
                f"{name:14} {row['trials']:>6} {row['pruned']:>6} {row['epochs']:>6} {row['wall']:>7.1f}  {row['best']}"
            )


if __name__ == "__main__":
    main()
