"""Reading data: the training speed and the peak memory of each way zenexp reads a dataset, side by side with the
lesson's own pipeline, on a CIFAR-10-sized set (50,000 + 10,000 images in CIFAR-10's own files) and on an
image folder of 20,000 small PNGs.

    python benchmarks/data.py            # about 6 minutes on 2 CPU cores
    python benchmarks/data.py --quick    # small sets and a few steps, to check the script itself

Every row is a fresh process: `python -m zenexp model=net ...` as a user runs it (batch 64, SGD, tracker
disabled), or the lesson's loop. images/s is the training speed the run records (`train/images_per_s`, over
STEPS steps); peak is the largest resident memory of the row's processes (the run, or a loader worker);
wall is the whole command, start-up and reading the files included. The files are random pixels in the real
formats, written once to a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import pickle
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

STEPS = 150
BATCH = 64
IMAGES = {"cifar10": (50_000, 10_000), "image_folder": (16_000, 4_000)}  # training, test
QUICK_IMAGES = {"cifar10": (500, 100), "image_folder": (400, 100)}

# The lesson's pipeline: torchvision's CIFAR10 with ToTensor and Normalize, a DataLoader with 2 workers, the
# lesson's CNN (zenexp's Net) and SGD. torchvision checks the files' MD5 sums, which random files fail: the check is skipped.
LESSON = textwrap.dedent(
    """
    import sys, time, torch, torchvision, torchvision.transforms as T
    from zenexp.run.models import Net

    class Files(torchvision.datasets.CIFAR10):
        def _check_integrity(self): return True
        def _load_meta(self): self.classes = [str(i) for i in range(10)]

    steps, batch = int(sys.argv[2]), int(sys.argv[3])
    transform = T.Compose([T.ToTensor(), T.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])
    loader = torch.utils.data.DataLoader(Files(sys.argv[1], transform=transform), batch_size=batch, shuffle=True, num_workers=2)
    net = Net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.001, momentum=0.9)
    started, images = None, 0
    for step, (inputs, labels) in enumerate(loader):
        if step == 5:  # the workers have started
            started, images = time.perf_counter(), 0
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(net(inputs), labels).backward()
        optimizer.step()
        images += len(labels)
        if step == steps + 5:
            break
    print(images / (time.perf_counter() - started))
    """
)


def write_cifar10(root: Path, train: int, test: int) -> None:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [(f"data_batch_{i}", train // 5) for i in range(1, 6)] + [("test_batch", test)]
    for name, count in names:
        batch = {
            "labels": [int(i % 10) for i in range(count)],
            "data": rng.integers(0, 256, size=(count, 3 * 32 * 32), dtype=np.uint8),
        }
        (folder / name).write_bytes(pickle.dumps(batch))


def write_folder(root: Path, train: int, test: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, count in (("train", train), ("test", test)):
        for i in range(count):
            folder = root / split / f"class_{i % 10}"
            folder.mkdir(parents=True, exist_ok=True)
            pixels = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.png")


def measured(command: list[str]) -> tuple[str, float, float]:
    """`command`'s stdout, its processes' peak resident memory (GB) and its wall time (s), in a process of
    its own so that the peak is this command's."""
    probe = (
        "import resource, subprocess, sys, time\n"
        "started = time.perf_counter()\n"
        "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "assert done.returncode == 0, done.stderr[-3000:]\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "print(peak, time.perf_counter() - started)\n"
        "print(done.stdout, end='')\n"
    )
    done = subprocess.run([sys.executable, "-c", probe, *command], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stderr)
    first, _, rest = done.stdout.partition("\n")
    peak_kib, wall = first.split()
    return rest, int(peak_kib) / 2**20, float(wall)


def zenexp_row(root: Path, run_dir: Path, steps: int, *overrides: str) -> tuple[float, float, float]:
    command = [
        sys.executable,
        "-m",
        "zenexp",
        "model=net",
        f"dataset.root={root}",
        "trainer.epochs=1",
        f"trainer.max_steps_per_epoch={steps}",
        f"trainer.batch_size={BATCH}",
        f"trainer.log_every_n_steps={steps}",
        "tracker.mode=disabled",
        f"hydra.run.dir={run_dir}",
        *overrides,
    ]
    _, peak, wall = measured(command)
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    speed = next(r["train/images_per_s"] for r in records if "train/images_per_s" in r)
    return speed, peak, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="small sets and a few steps, to check the script"
    )
    quick = parser.parse_args().quick
    sizes, steps = (QUICK_IMAGES, 5) if quick else (IMAGES, STEPS)
    rows: list[tuple[str, float, float, float]] = []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        cifar, pictures = work / "cifar", work / "pictures"
        started = time.perf_counter()
        write_cifar10(cifar, *sizes["cifar10"])
        write_folder(pictures, *sizes["image_folder"])
        print(f"files written in {time.perf_counter() - started:.0f} s; batch {BATCH}, {steps} steps a row\n")

        cifar_runs = {
            "zenexp, uint8 in memory": ["dataset.in_memory=true"],
            "zenexp, per batch, 0 workers": ["dataset.in_memory=false", "trainer.loader_workers=0"],
            "zenexp, per batch, 2 workers": ["dataset.in_memory=false", "trainer.loader_workers=2"],
        }
        for name, overrides in cifar_runs.items():
            run = zenexp_row(cifar, work / f"run{len(rows)}", steps, "dataset=cifar10", *overrides)
            rows.append((f"CIFAR-10 files: {name}", *run))
        script = work / "lesson.py"
        script.write_text(LESSON)
        out, peak, wall = measured([sys.executable, str(script), str(cifar), str(steps), str(BATCH)])
        rows.append(
            ("CIFAR-10 files: lesson, DataLoader(CIFAR10(transform)), 2 workers", float(out), peak, wall)
        )

        folder_runs = {
            "zenexp, read into memory (2 workers)": ["dataset.in_memory=true", "trainer.loader_workers=2"],
            "zenexp, per batch, 0 workers": ["dataset.in_memory=false", "trainer.loader_workers=0"],
            "zenexp, per batch, 2 workers": ["dataset.in_memory=false", "trainer.loader_workers=2"],
        }
        for name, overrides in folder_runs.items():
            run = zenexp_row(pictures, work / f"run{len(rows)}", steps, "dataset=image_folder", *overrides)
            rows.append((f"{sum(sizes['image_folder'])} PNGs: {name}", *run))

    print(f"{'how the images are read':<70}{'images/s':>10}{'peak GiB':>10}{'wall s':>9}")
    for name, speed, peak, wall in rows:
        print(f"{name:<70}{speed:>10.0f}{peak:>10.2f}{wall:>9.1f}")


if __name__ == "__main__":
    main()
