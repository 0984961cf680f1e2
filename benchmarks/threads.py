"""Training speed with zenexp's default thread count (`trainer.num_threads=auto`) against the bare PyTorch loop and
against one thread, for each shipped model at batch 4 and 128, on an idle machine and on one where other
processes keep every core busy (a second run, a sweep, a shared machine).

    python benchmarks/threads.py            # about twelve minutes on 2 CPU cores
    python benchmarks/threads.py --quick    # a few steps of each, to check the script itself

Each figure is the best of three, taken in turn (bare, 1 thread, default): on a shared machine, the one least
disturbed by other processes. zenexp's is the training images/s it records (`train/images_per_s`) for one
epoch of CIFAR-10-shaped random images (`dataset=fake`), through `launch()` as a user runs it. The bare loop trains the same model on
the same tensors, preloaded, with SGD and torch's default thread count: the speed a user gets without zenexp.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import multiprocessing
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import chdir, contextmanager, nullcontext

import torch
from hydra_zen import instantiate, launch
from torch import nn

import zenexp
from zenexp.configs.schema import compose_config
from zenexp.parallel import machine
from zenexp.run.provenance import read_run_file

# Epochs long enough that an epoch's fixed costs (its shuffle, the progress display) do not count: a small
# model takes about 2 ms a step at batch 128.
STEPS = {4: 1000, 128: 200}  # a quarter of these on a busy machine, where every figure is lower
REPEATS = 3  # each figure is the best of this many
MODELS = ("small", "large", "net")


def zenexp_speed(model: str, batch_size: int, threads: str, steps: int) -> tuple[float, int]:
    """Images/s zenexp recorded, and the thread count the run used."""
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
    speed = float(next(json.loads(r)["train/images_per_s"] for r in records if "images_per_s" in r))
    return speed, int(read_run_file(result.output_dir)["threads"])


def bare_speed(model: str, batch_size: int, steps: int) -> float:
    """Images/s of a plain PyTorch loop over preloaded tensors, torch's default threads."""
    network: nn.Module = instantiate(compose_config([f"model={model}", "dataset=fake"]).model)
    optimizer = torch.optim.SGD(network.parameters(), lr=0.001, momentum=0.9)
    images, labels = torch.randn(batch_size * steps, 3, 32, 32), torch.randint(0, 10, (batch_size * steps,))
    torch.set_num_threads(machine.TORCH_DEFAULT_THREADS)
    start = time.perf_counter()
    for i in range(steps):
        batch = slice(i * batch_size, (i + 1) * batch_size)
        optimizer.zero_grad()
        nn.functional.cross_entropy(network(images[batch]), labels[batch]).backward()
        optimizer.step()
    return batch_size * steps / (time.perf_counter() - start)


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
    os.environ.pop("OMP_NUM_THREADS", None)  # zenexp's own choice, not a cap from the shell
    logging.getLogger("zenexp").setLevel(logging.WARNING)  # the table only
    cores = machine.cores()
    print(
        f"{cores} cores ({machine.idle_cores(1.0):.1f} idle before the start), torch {torch.__version__}, "
        f"torch's default {machine.TORCH_DEFAULT_THREADS} threads; images/s (higher is better)\n"
    )
    print(
        f"{'load':<5} {'model':<6} {'batch':>5} {'bare loop':>10} {'1 thread':>9} {'default':>8} "
        f"{'(threads)':>9} {'default/bare':>12} {'default/1':>9}"
    )
    with tempfile.TemporaryDirectory() as folder, chdir(folder):
        for model in MODELS:  # warm up: imports, first allocations
            zenexp_speed(model, 4, "1", 5)
            bare_speed(model, 4, 5)
        for load, model, batch_size in itertools.product(("idle", "busy"), MODELS, (4, 128)):
            steps = 5 if quick else STEPS[batch_size] // (4 if load == "busy" else 1)
            with busy(cores) if load == "busy" else nullcontext():
                bares, ones, autos = [], [], []
                for _ in range(1 if quick else REPEATS):  # interleaved: a shared machine drifts
                    bares.append(bare_speed(model, batch_size, steps))
                    ones.append(zenexp_speed(model, batch_size, "1", steps)[0])
                    autos.append(zenexp_speed(model, batch_size, "auto", steps))
            bare, one = max(bares), max(ones)
            default = max(speed for speed, _ in autos)
            threads = "/".join(sorted({str(count) for _, count in autos}))
            print(
                f"{load:<5} {model:<6} {batch_size:>5} {bare:10.0f} {one:9.0f} {default:8.0f} {threads:>9} "
                f"{default / bare:11.2f}x {default / one:8.2f}x",
                flush=True,
            )


if __name__ == "__main__":
    main()
