"""Each test runs in its own empty directory; helpers run zenexp the ways a user does."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hydra_zen import launch
from omegaconf import OmegaConf
from swanlab.proto.swanlab.record.v1.record_pb2 import Record
from swanlab.sdk.internal.core_python.store import DataStoreReader

import zenexp
from zenexp.cli import main
from zenexp.run.train import RunResult

# Small and quick: one short epoch. Tests that need real training say so.
QUICK = ["trainer.epochs=1", "trainer.max_steps_per_epoch=3", "trainer.batch_size=8"]


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: one worker per core this process may run on (its affinity, not the machine's count), at most
    8: each worker holds torch (about 0.8 GB) and starts runs of its own. A test trains on one thread."""
    return min(len(os.sched_getaffinity(0)), 8)


# The longest tests (a minute or more each, or a group that runs on one worker) start first, so that no worker
# is left running one of them alone at the end while the others wait.
LONGEST = (
    "tests/test_docs.py::test_every_command_and_snippet_runs_as_shown",
    "tests/sweep/test_slurm.py",
    "tests/parallel/test_parallel.py",
    "tests/test_benchmarks.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        return next((i for i, prefix in enumerate(LONGEST) if item.nodeid.startswith(prefix)), len(LONGEST))

    items.sort(key=rank)  # stable: otherwise in file order


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    work_in(tmp_path, monkeypatch)
    yield tmp_path


def work_in(folder: Path, patch: pytest.MonkeyPatch) -> None:
    """Run in `folder`, with SwanLab's user-level files there and no key of the person running the tests, and
    train on one thread (`trainer.num_threads=auto` takes OMP_NUM_THREADS): the workers share the cores."""
    patch.chdir(folder)
    patch.setenv("OMP_NUM_THREADS", "1")
    patch.setenv("SWANLAB_ROOT", str(folder / ".swanlab-home"))
    patch.delenv("SWANLAB_API_KEY", raising=False)
    patch.delenv("SWANLAB_MODE", raising=False)


@pytest.fixture(scope="session")
def trained_quick_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One finished `run(*QUICK)` (tracker offline), trained once per worker: read it, never change it."""
    folder = tmp_path_factory.mktemp("quick-run")
    with pytest.MonkeyPatch.context() as patch:
        work_in(folder, patch)
        return run(*QUICK).output_dir


@pytest.fixture
def quick_run(trained_quick_run: Path, in_tmp_path: Path) -> Path:
    """A copy of `trained_quick_run` in this test's directory, where `run(*QUICK)` would have put it: the test
    may change, resume or damage it."""
    copy = in_tmp_path / "outputs" / "trained" / "quick"
    shutil.copytree(trained_quick_run, copy, symlinks=True)
    return copy


def run(*overrides: str) -> RunResult:
    """Run one job through `hydra_zen.launch`, as the README shows."""
    job = launch(zenexp.MainConfig, zenexp.task, overrides=list(overrides), version_base="1.3")
    result = job.return_value
    assert isinstance(result, RunResult)
    return result


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `python -m zenexp ARGS` in a subprocess, in the current directory."""
    return subprocess.run(
        [sys.executable, "-m", "zenexp", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def in_process(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`zenexp ARGS` as `zenexp.cli.main(ARGS)` in this process: the exit status, stdout and stderr that `cli()`
    gives, without a new interpreter's start-up. `cli()` is for what only a real process shows (the console
    script, signals, kills, what a fresh interpreter imports or reads from its environment at start)."""
    saved_environ, saved_argv = dict(os.environ), list(sys.argv)
    os.environ.update(env or {})
    out, err = io.StringIO(), io.StringIO()
    status = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(list(args))
            except SystemExit as stopped:
                if isinstance(stopped.code, int):
                    status = stopped.code
                elif stopped.code is not None:  # SystemExit("zenexp: error: ..."): as the interpreter does
                    print(stopped.code, file=sys.stderr)
                    status = 1
    finally:
        os.environ.clear()
        os.environ.update(saved_environ)  # a run's hydra.job.env_set, too
        sys.argv[:] = saved_argv
    return subprocess.CompletedProcess(["zenexp", *args], status, out.getvalue(), err.getvalue())


def zenexp_for(launcher: str) -> Callable[..., subprocess.CompletedProcess[str]]:
    """`in_process`, but `cli` for a joblib sweep: loky's workers outlive a sweep run in this process and keep
    the working directory they started in, so a later test's jobs would be written in an earlier test's."""
    return cli if launcher == "joblib" else in_process


def run_dirs(root: Path) -> list[Path]:
    """The run directories under `root` (outputs/ or multirun/), oldest first."""
    return sorted((p.parent.parent for p in root.glob("**/.hydra/config.yaml")), key=str)


def swanlab_folders(run_dir: Path) -> list[Path]:
    """The SwanLab runs' folders in `run_dir`, in the order they started. (A folder's name gives the second only,
    which a resume in this process can share with the run it continues; SwanLab writes swanlab-metadata.json
    once, as a run starts.)"""
    return sorted(
        (run_dir / "swanlog").glob("run-*"),
        key=lambda folder: (folder / "files" / "swanlab-metadata.json").stat().st_mtime_ns,
    )


class SwanLabRun:
    """A SwanLab offline run read back from its files: config.yaml and the run-<id>.swanlab record log."""

    def __init__(self, run_dir: Path, part: int = 0) -> None:
        """`part`: 0 for the first SwanLab run in `run_dir`, 1 for the one a resume started, ..."""
        folder = swanlab_folders(run_dir)[part]
        raw = OmegaConf.to_container(OmegaConf.load(folder / "files" / "config.yaml"))
        assert isinstance(raw, dict)
        self.config: dict[str, Any] = {str(key): entry["value"] for key, entry in raw.items()}
        self.start: Any = None
        self.finish: Any = None
        self.scalars: dict[str, list[tuple[int, float]]] = {}
        self.media: dict[str, list[Any]] = {}  # images: key -> records
        reader = DataStoreReader()
        (log_file,) = folder.glob("run-*.swanlab")
        reader.open(log_file)
        for data in reader:
            record = Record()
            record.ParseFromString(data)
            kind = record.WhichOneof("record_type")
            if kind == "start":
                self.start = record.start
            elif kind == "finish":
                self.finish = record.finish
            elif kind == "media":
                self.media.setdefault(record.media.key, []).append(record.media)
            elif kind == "scalar":
                self.scalars.setdefault(record.scalar.key, []).append(
                    (record.scalar.step, record.scalar.value.number)
                )
        reader.close()


def hashes(folder: Path) -> dict[str, str]:
    """Every file under `folder` and its content's hash: equal means byte-for-byte the same."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def read_metrics(run_dir: Path, timings: bool = False) -> list[dict[str, float]]:
    """The records of `metrics.jsonl`; measured speeds (which differ run to run) only when asked."""
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    if not timings:
        for record in records:
            record.pop("train/images_per_s", None)
    return records


def write_cifar10(root: Path, per_batch: int = 20) -> None:
    """Tiny CIFAR-10 files in torchvision's python-pickle layout."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {
            "batch_label": name,
            "labels": [int(i % 10) for i in range(per_batch)],
            "data": rng.integers(0, 256, size=(per_batch, 3 * 32 * 32), dtype=np.uint8),
            "filenames": [f"{name}_{i}.png" for i in range(per_batch)],
        }
        (folder / name).write_bytes(pickle.dumps(batch))
    meta = {"label_names": "airplane automobile bird cat deer dog frog horse ship truck".split()}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))


def write_mnist(root: Path, train: int = 60, test: int = 20, name: str = "MNIST") -> None:
    """Tiny MNIST files in the idx format, where torchvision looks for them (`name="FashionMNIST"`: the same
    files where FashionMNIST looks)."""
    raw = root / name / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, count in (("train", train), ("t10k", test)):
        images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
        labels = (np.arange(count) % 10).astype(np.uint8)
        header = np.array([0x803, count, 28, 28], dtype=">i4").tobytes()
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(header + images.tobytes())
        header = np.array([0x801, count], dtype=">i4").tobytes()
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(header + labels.tobytes())
