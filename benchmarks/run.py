"""zenexp against the training loop of the course lesson 《6. 开展和记录实验》 ("Running and recording experiments")
and against the floor of a bare in-memory loop.

    python benchmarks/run.py            # about two minutes on 2 CPU cores
    python benchmarks/run.py --quick    # a few steps of each, to check the script itself

Same model (the lesson's Net), optimizer (SGD, lr 0.001, momentum 0.9), CIFAR-10-shaped data and step
count in each pipeline; each is warmed up, then timed. Prints images/s and the ratios, then start-up,
the default job, tracking and evaluation costs.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import chdir
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra_zen import launch

import zenexp
from zenexp.data.datasets import fake
from zenexp.data.loading import Reader, choose
from zenexp.run.evaluation import evaluate
from zenexp.run.models import Net

STEPS = {4: 400, 128: 40}  # timed steps per batch size; the lesson's pipeline needs ~10 s for 40x128
WARMUP_STEPS = 10


def timed_steps(step: Callable[[], None], steps: int) -> float:
    for _ in range(WARMUP_STEPS):
        step()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return time.perf_counter() - started


def lesson_pipeline(batch_size: int, steps: int) -> float:
    """The lesson's loop: PIL images -> ToTensor -> Normalize in a DataLoader with 2 workers."""
    import torchvision.transforms as transforms
    from torchvision.datasets import FakeData

    transform = transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))]
    )
    images = batch_size * (steps + WARMUP_STEPS)
    loader = torch.utils.data.DataLoader(
        FakeData(images, (3, 32, 32), 10, transform=transform),
        batch_size=batch_size,
        shuffle=True,
        num_workers=2,
    )
    net = Net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.001, momentum=0.9)
    batches = iter(loader)

    def step() -> None:
        inputs, labels = next(batches)
        optimizer.zero_grad()
        loss = F.cross_entropy(net(inputs), labels)
        loss.backward()
        optimizer.step()

    return batch_size * steps / timed_steps(step, steps)


def floor(batch_size: int, steps: int) -> float:
    """The least a loop can do: preloaded tensors, batches sliced by a random permutation."""
    count = batch_size * (steps + WARMUP_STEPS)
    images, labels = torch.randn(count, 3, 32, 32), torch.randint(0, 10, (count,))
    order = iter(torch.randperm(count).split(batch_size))
    net = Net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.001, momentum=0.9)

    def step() -> None:
        batch = next(order)
        optimizer.zero_grad()
        loss = F.cross_entropy(net(images[batch]), labels[batch])
        loss.backward()
        optimizer.step()

    return batch_size * steps / timed_steps(step, steps)


def zenexp_training(batch_size: int, steps: int, tracker: str = "offline") -> float:
    """zenexp's own loop through `launch()`: the images/s it records for its second epoch."""
    overrides = [
        "model=net",
        "dataset=fake",
        f"dataset.train_size={batch_size * steps}",
        "dataset.val_size=100",
        "dataset.test_size=100",
        f"trainer.batch_size={batch_size}",
        "trainer.num_threads=0",  # torch's default, as in the other two pipelines
        "trainer.epochs=2",
        f"tracker.mode={tracker}",
    ]
    with tempfile.TemporaryDirectory() as folder, chdir(folder):  # launch() writes outputs/ here
        job = launch(zenexp.MainConfig, zenexp.task, overrides=overrides, version_base="1.3")
        records = (job.return_value.output_dir / "metrics.jsonl").read_text().splitlines()
    speeds = [json.loads(line)["train/images_per_s"] for line in records if "train/images_per_s" in line]
    return float(speeds[-1])


def wall_time(*command: str, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def default_job() -> tuple[float, float, float]:
    """Wall time, peak memory (MB) and test accuracy of `python -m zenexp`, the offline default."""
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "zenexp"], cwd=folder, check=True, capture_output=True)
        wall = time.perf_counter() - started
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        (summary,) = Path(folder).glob("outputs/*/*/summary.json")
        accuracy = json.loads(summary.read_text())["test_accuracy"]
    return wall, peak_mb, accuracy


def tracking_cost(batch_size: int, log_every: int = 50, calls: int = 2000) -> float:
    """What recording costs a training step, as a share of the floor's step time: one offline SwanLab
    log plus one metrics-file line per `log_every` steps."""
    from omegaconf import OmegaConf

    from zenexp.configs import TrackerConf
    from zenexp.tracking.recorder import Recorder

    with tempfile.TemporaryDirectory() as folder:
        recorder = Recorder(
            TrackerConf(), OmegaConf.create({"benchmark": True}), Path(folder), "tracking-cost"
        )
        with recorder:
            started = time.perf_counter()
            for step in range(calls):
                recorder.log({"train/loss": 0.5}, step)
            per_log = (time.perf_counter() - started) / calls
    step_time = batch_size / floor(batch_size, STEPS[batch_size] // 4)
    return per_log / log_every / step_time


def evaluation_speed(count: int = 4096) -> float:
    data = fake(train_size=1, val_size=1, test_size=count)
    reader = Reader(data, choose(data, 0, 1), torch.device("cpu"))
    net = Net()
    evaluate(net, reader.normalised_batches("test"), data.classes)  # warm up
    started = time.perf_counter()
    evaluate(net, reader.normalised_batches("test"), data.classes)
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few steps of each, to check the script")
    quick = parser.parse_args().quick
    steps = {batch: 5 if quick else count for batch, count in STEPS.items()}
    torch.manual_seed(0)

    print(f"device: cpu, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"\n{'pipeline':<44}{'batch 4':>12}{'batch 128':>12}   images/s")
    rows = {
        "lesson: PIL -> ToTensor -> Normalize, 2 workers": lesson_pipeline,
        "floor: preloaded tensors, no DataLoader": floor,
        "zenexp (tracker offline)": zenexp_training,
    }
    results = {name: {b: fn(b, steps[b]) for b in steps} for name, fn in rows.items()}
    for name, by_batch in results.items():
        print(f"{name:<44}" + "".join(f"{by_batch[b]:>12,.0f}" for b in steps))
    lesson, bare, ours = results.values()
    print(f"{'zenexp / lesson':<44}" + "".join(f"{ours[b] / lesson[b]:>11.2f}x" for b in steps))
    print(f"{'zenexp / floor':<44}" + "".join(f"{ours[b] / bare[b]:>11.2f}x" for b in steps))

    print()
    torch_import = wall_time(sys.executable, "-c", "import torch", repeat=1 if quick else 3)
    cfg_job = wall_time(sys.executable, "-m", "zenexp", "--cfg", "job", repeat=1 if quick else 3)
    help_text = wall_time(sys.executable, "-m", "zenexp", "--help", repeat=1 if quick else 3)
    print(f"{'python -c import torch':<44}{torch_import:>10.2f} s")
    print(
        f"{'python -m zenexp --cfg job':<44}{cfg_job:>10.2f} s   {cfg_job / torch_import:.2f}x import torch"
    )
    print(
        f"{'python -m zenexp --help':<44}{help_text:>10.2f} s   {help_text / torch_import:.2f}x import torch"
    )
    if not quick:
        wall, peak, accuracy = default_job()
        print(
            f"{'python -m zenexp (default job)':<44}{wall:>10.2f} s   peak {peak:,.0f} MB, test accuracy {accuracy:.3f}"
        )
    cost = tracking_cost(4, calls=100 if quick else 2000)
    print(f"{'tracking, every 50 steps, batch 4':<44}{cost:>10.2%}   of a step (target < 2%)")
    disabled = zenexp_training(4, steps[4], tracker="disabled")
    print(f"{'zenexp batch 4, tracker disabled':<44}{disabled:>10,.0f}   images/s (offline: {ours[4]:,.0f})")
    evaluation = evaluation_speed(256 if quick else 4096)
    print(f"{'evaluation':<44}{evaluation:>10,.0f}   images/s (training at batch 128: {ours[128]:,.0f})")


if __name__ == "__main__":
    main()
