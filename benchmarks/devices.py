"""One job on several devices, measured on this machine's CPU (gloo processes): training speed on 1 and 2
devices at a small and a large global batch, and how long a job takes to end after one of its ranks is
killed. Run on purpose: `python benchmarks/devices.py [--quick]` (about 3 minutes; --quick, one of each).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ZENEXP = [sys.executable, "-m", "zenexp", "tracker.mode=disabled", "dataset=digits", "model=small"]


def images_per_s(devices: int, batch_size: int, epochs: int) -> float:
    """The last epoch's training speed (the first pays for warming up)."""
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run(
            [
                *ZENEXP,
                f"trainer.devices={devices}",
                f"trainer.batch_size={batch_size}",
                f"trainer.epochs={epochs}",
            ],
            cwd=folder,
            check=True,
            capture_output=True,
            stdin=subprocess.DEVNULL,
        )
        (metrics,) = Path(folder).glob("outputs/*/*/metrics.jsonl")
        speeds = [
            r["train/images_per_s"] for r in map(json.loads, metrics.read_text().splitlines()) if "epoch" in r
        ]
        return float(speeds[-1])


def rank_of(parent: int) -> int:
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            if int(stat[1]) == parent and b"zenexp.parallel.spawned" in (proc / "cmdline").read_bytes():
                return int(proc.name)
        except OSError:
            continue
    raise LookupError("no rank 1")


def seconds_to_end_after_a_kill() -> float:
    """From SIGKILL of rank 1, in training, to the job's exit."""
    with tempfile.TemporaryDirectory() as folder:
        job = subprocess.Popen(
            [*ZENEXP, "trainer.devices=2", "trainer.epochs=50"],
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while not any(p.stat().st_size for p in Path(folder).glob("outputs/*/*/metrics.jsonl")):
            if time.monotonic() > deadline or job.poll() is not None:
                job.kill()
                raise RuntimeError(f"the job did not start training: {job.communicate()[1]!r}")
            time.sleep(0.01)
        os.kill(rank_of(job.pid), signal.SIGKILL)
        killed = time.monotonic()
        _, stderr = job.communicate(timeout=600)
        took = time.monotonic() - killed
        assert b"rank 1 of 2 died (killed by SIGKILL)" in stderr, stderr
        return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one short run of each")
    quick = parser.parse_args().quick
    epochs, trials = (1, 1) if quick else (3, 5)
    print(f"digits MLP, {os.cpu_count()} CPU cores, 1 torch thread per rank; images/s of the last epoch")
    for batch_size in (4, 256):
        one, two = (images_per_s(devices, batch_size, epochs) for devices in (1, 2))
        print(f"batch {batch_size:>3}: 1 device {one:8.0f}, 2 devices {two:8.0f} images/s ({two / one:.2f}x)")
    times = sorted(seconds_to_end_after_a_kill() for _ in range(trials))
    print(
        f"rank 1 killed: the job ended {times[len(times) // 2]:.2f} s later "
        f"(median of {trials}; min {times[0]:.2f}, max {times[-1]:.2f})"
    )


if __name__ == "__main__":
    main()
