"""Training speed by torch CPU thread count, for each shipped model at batch 4 and 128, on an idle machine and on
one where other processes keep every core busy (what a joblib sweep or a shared machine does).

    python benchmarks/threads.py            # about four minutes on 2 CPU cores
    python benchmarks/threads.py --quick    # a few steps of each, to check the script itself

Each figure is the training images/s zenexp records (`train/images_per_s`) for one epoch of CIFAR-10-shaped
random images (`dataset=fake`), through `launch()` as a user runs it; the first run of each model warms up.
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import os
import tempfile
from collections.abc import Iterator
from contextlib import chdir, contextmanager

import torch
from hydra_zen import launch

import zenexp

STEPS = {4: 300, 128: 30}


def speed(model: str, batch_size: int, threads: int, steps: int) -> float:
    overrides = [
        f"model={model}",
        "dataset=fake",
        f"dataset.train_size={batch_size * steps}",
        "dataset.val_size=16",
        "dataset.test_size=16",
        "trainer.epochs=1",
        f"trainer.batch_size={batch_size}",
        f"trainer.num_threads={threads}",
        "trainer.device=cpu",
        "tracker.mode=disabled",
    ]
    result = launch(zenexp.MainConfig, zenexp.task, overrides=overrides, version_base="1.3").return_value
    records = (result.output_dir / "metrics.jsonl").read_text().splitlines()
    return float(next(json.loads(r)["train/images_per_s"] for r in records if "images_per_s" in r))


def _spin() -> None:
    while True:
        pass


@contextmanager
def busy(cores: int) -> Iterator[None]:
    """`cores` processes that never stop computing."""
    spinners = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(cores)]
    for spinner in spinners:
        spinner.start()
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.terminate()
            spinner.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few steps of each, to check the script")
    quick = parser.parse_args().quick
    cores = os.cpu_count() or 1
    counts = sorted({1, cores})
    print(f"{cores} cores, torch {torch.__version__}; images/s by torch threads (higher is better)\n")
    print(
        f"{'load':<6} {'model':<6} {'batch':>5}  " + "  ".join(f"{f'{n} thr':>9}" for n in counts) + "  ratio"
    )
    with tempfile.TemporaryDirectory() as folder, chdir(folder):
        for model in ("small", "large", "net"):
            speed(model, 4, 1, 5)  # warm up: imports, first allocations
        for load, model, batch_size in itertools.product(
            ("idle", "busy"), ("small", "large", "net"), (4, 128)
        ):
            steps = 5 if quick else STEPS[batch_size]
            if load == "busy":
                with busy(cores):
                    figures = [speed(model, batch_size, n, steps) for n in counts]
            else:
                figures = [speed(model, batch_size, n, steps) for n in counts]
            cells = "  ".join(f"{figure:9.0f}" for figure in figures)
            ratio = figures[-1] / figures[0]
            print(f"{load:<6} {model:<6} {batch_size:>5}  {cells}  {ratio:5.2f}", flush=True)
    print(f"\nratio: {counts[-1]} threads / 1 thread")


if __name__ == "__main__":
    main()
