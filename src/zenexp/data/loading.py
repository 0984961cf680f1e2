"""Batches of a run's data on its device: sliced from memory, or read per image by a `DataLoader`.

Which path a dataset takes (`choose`): `dataset.in_memory` when set; otherwise in memory when its images, as
stored (uint8), take at most half the memory available now, shared among the jobs and ranks on this machine.
Both paths take the same images in the same order, so they train to the same metrics (tests/data/test_loading.py).
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import sys
import weakref
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader

from zenexp.data.datasets import ImageData, Images, normalise
from zenexp.errors import UserError
from zenexp.parallel import machine
from zenexp.run.progress import Progress

log = logging.getLogger("zenexp")

SPLITS = ("train", "val", "test")
# The loader's workers are started by this, not by the process's default context: a job in a joblib worker
# has loky's as its default, which cannot start them. fork where it is safe (Linux), as torch's default.
WORKERS_START = (
    "fork" if "fork" in multiprocessing.get_all_start_methods() and sys.platform == "linux" else "spawn"
)
EVAL_BATCH_SIZE = 256
# A share of the memory available now: the rest is for the model, the batches and everything else.
MEMORY_SHARE = 0.5


@dataclass(frozen=True)
class Placement:
    """Where a run's images are: in memory, or read per batch by `workers` processes (0: this process)."""

    in_memory: bool
    workers: int
    size: int  # bytes of all the images, as stored
    reason: str

    def __str__(self) -> str:
        held = f"{self.size / 2**20:.1f} MiB of images"
        if self.in_memory:
            return f"{held}, held in memory ({self.reason})"
        by = (
            f"{self.workers} loader worker{'' if self.workers == 1 else 's'}"
            if self.workers
            else "this process"
        )
        return f"{held}, read per batch by {by} ({self.reason})"


def size_of(data: ImageData) -> int:
    """Bytes of all the images of the three splits, as stored."""
    first = data.train_images[0]
    per_image = first.numel() * first.element_size()
    return per_image * sum(len(data.split(name)[0]) for name in SPLITS)


def workers_for(asked: int | str, sharing: int) -> int:
    """`trainer.loader_workers`: N, or auto: half of this job's share of the cores (the other half trains), at
    most 8."""
    if asked != "auto":
        return int(asked)
    return max(1, min(8, machine.cores() // max(1, sharing) // 2))


def choose(data: ImageData, loader_workers: int | str, ranks_here: int) -> Placement:
    """In memory or per batch (the module's rule), and how many processes read."""
    sharing = max(1, machine.side_by_side()) * ranks_here
    workers = workers_for(loader_workers, sharing)
    size = size_of(data)
    if data.in_memory is not None:
        return Placement(data.in_memory, workers, size, f"dataset.in_memory={str(data.in_memory).lower()}")
    available = machine.available_memory()
    if available is None:
        return Placement(True, workers, size, "this system does not say how much memory is available")
    room = available * MEMORY_SHARE / sharing
    fits = size <= room
    reason = f"{'within' if fits else 'over'} {room / 2**20:.0f} MiB, half the available memory"
    if sharing > 1:
        reason += f" shared by {sharing} jobs and ranks"
    return Placement(fits, workers, size, reason)


class Reader:
    """The batches of one run's three splits, as uint8 (or a loader's float) images and labels on `device`."""

    def __init__(self, data: ImageData, placement: Placement, device: torch.device) -> None:
        self.placement = placement
        self.device = device
        self.scale = data.scale
        self.classes = data.classes
        self.image_shape = data.image_shape()
        self.labels = {name: data.split(name)[1].to(device) for name in SPLITS}
        if placement.in_memory:
            self.images = {name: self._held(data.split(name)[0], name, placement.workers) for name in SPLITS}
        else:
            self._plan = _Plan()
            splits = [data.split(name)[0] for name in SPLITS]
            self._loader = _loader(
                splits, self._plan, placement.workers, device.type == "cuda", persistent=True
            )
            weakref.finalize(self, _stop_workers, self._loader)

    def _held(self, images: Images, name: str, workers: int) -> torch.Tensor:
        """A split's images as one tensor on the device, read (by `workers` processes) when not one already."""
        if isinstance(images, torch.Tensor):
            return images.to(self.device)
        batches = [range(i, min(i + 256, len(images))) for i in range(0, len(images), 256)]
        loader = _loader([images], [[(0, i) for i in batch] for batch in batches], workers)
        first = images[0]
        held = torch.empty(len(images), *first.shape, dtype=first.dtype)  # filled in place: no second copy
        with Progress(f"reading the {name} images", len(batches)) as progress:
            for done, (rows, batch) in enumerate(zip(batches, _reraised(loader), strict=True), 1):
                held[rows.start : rows.stop] = batch
                progress.update(done)
        return held.to(self.device)

    @property
    def index_device(self) -> torch.device:
        """Where batch indices are best made: beside the images held in memory, else on the CPU."""
        return self.device if self.placement.in_memory else torch.device("cpu")

    def count(self, split: str) -> int:
        return len(self.labels[split])

    def batches(
        self, split: str, plan: Sequence[torch.Tensor] | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The images and labels of each index tensor in `plan` (by default: the whole split in order, in
        batches of EVAL_BATCH_SIZE), on the device; images as stored (see `normalised`)."""
        if plan is None:
            plan = torch.arange(self.count(split)).split(EVAL_BATCH_SIZE)
        labels = self.labels[split]
        if self.placement.in_memory:
            images = self.images[split]
            for indices in plan:
                on_device = indices.to(images.device)
                yield images[on_device], labels[on_device]
            return
        number = SPLITS.index(split)
        self._plan.batches = [[(number, i) for i in indices.tolist()] for indices in plan]
        for indices, batch in zip(plan, _reraised(self._loader), strict=True):
            yield batch.to(self.device, non_blocking=True), labels[indices.to(labels.device)]

    def normalised(self, images: torch.Tensor) -> torch.Tensor:
        return normalise(images, self.scale)

    def normalised_batches(self, split: str) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The whole split in order, normalised: what evaluation reads."""
        for images, labels in self.batches(split):
            yield self.normalised(images), labels


def _loader(
    splits: list[Images],
    batches: Iterable[list[tuple[int, int]]],
    workers: int,
    pinned: bool = False,
    persistent: bool = False,
) -> DataLoader[torch.Tensor]:
    """A loader of `splits`' images by (split number, index), a batch per list of `batches`, read by `workers`
    processes that leave signals to the run."""
    return DataLoader(
        _Items(splits),
        batch_sampler=batches,
        num_workers=workers,
        pin_memory=pinned,
        persistent_workers=persistent and workers > 0,
        worker_init_fn=_leave_signals_to_the_run,
        multiprocessing_context=WORKERS_START if workers else None,
        # Its own generator: the loader draws its workers' seeds from it, not from the run's random stream
        # (which would then differ between the two paths). The workers draw no random numbers.
        generator=torch.Generator().manual_seed(0),
    )


class _Items(torch.utils.data.Dataset[torch.Tensor]):
    """The images of several splits, by (split number, index): what the loader's workers read."""

    def __init__(self, splits: list[Images]) -> None:
        self.splits = splits

    def __getitem__(self, key: tuple[int, int]) -> torch.Tensor:
        split, index = key
        return self.splits[split][index]

    def __len__(self) -> int:
        return sum(len(images) for images in self.splits)


class _Plan:
    """The loader's batch sampler: the index lists of its next pass, set before each pass."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[int, int]]] = []

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def _leave_signals_to_the_run(worker: int) -> None:
    """A worker ignores Ctrl-C and SIGTERM, sent to the whole process group (a terminal, Slurm): the run
    finishes its step, saves a checkpoint and stops its workers itself (a worker that died would make the
    loader raise in the middle of the step, before the run could save)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _stop_workers(loader: DataLoader[torch.Tensor]) -> None:
    """Stop a loader's persistent workers: when the run's reader is gone, and at the interpreter's exit before
    multiprocessing's own clean-up (which would wait forever for workers that ignore its SIGTERM)."""
    iterator = loader._iterator
    if iterator is not None:
        iterator._shutdown_workers()  # type: ignore[attr-defined]


def _reraised(loader: DataLoader[torch.Tensor]) -> Iterator[torch.Tensor]:
    """The loader's batches; a worker's UserError (an unreadable image) as its own one line, not the
    worker's traceback that the loader wraps it in."""
    iterator = iter(loader)
    try:
        yield from iterator
    except Exception as error:
        # Stop the workers now: they ignore SIGTERM, and the error's traceback keeps them alive until the
        # interpreter's exit, which would wait for them forever.
        getattr(iterator, "_shutdown_workers", lambda: None)()
        if not isinstance(error, UserError):
            raise
        lines = [line for line in str(error).splitlines() if line.strip()]
        raise UserError(lines[-1].split("UserError: ", 1)[-1]) from None
