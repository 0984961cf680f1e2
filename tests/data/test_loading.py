"""Images as stored (uint8), read from memory or per batch by a DataLoader, and augmented training batches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import torchvision.transforms.v2 as v2
from hydra_zen import builds, store
from omegaconf import DictConfig, OmegaConf

from tests.conftest import in_process, read_metrics, run
from zenexp import UserError
from zenexp.configs import add_to_hydra_store
from zenexp.data import loading
from zenexp.data.augment import Augmentation
from zenexp.data.datasets import ImageData, digits
from zenexp.parallel import machine

# Metrics of `run(*GOLDEN)` recorded by zenexp 803cf6f, which held the images as normalised float32: the uint8
# images, normalised per batch with the same operations, give exactly the same float batches.
GOLDEN = ["trainer.epochs=2", "trainer.batch_size=16", "trainer.num_threads=1", "tracker.mode=disabled"]
GOLDEN_METRICS = {
    "val_accuracy": 0.8055555555555556,
    "test_loss": 1.8322308468619428,
    "test_accuracy": 0.713091922005571,
    "train_loss": 1.955888192864913,
}


def test_uint8_images_train_to_the_metrics_of_the_float_path() -> None:
    metrics = run(*GOLDEN).metrics
    assert {name: metrics[name] for name in GOLDEN_METRICS} == GOLDEN_METRICS


def test_read_per_batch_by_workers_trains_exactly_as_in_memory() -> None:
    """The two paths take the same images in the same order: the same records, step by step."""
    streamed = run(*GOLDEN, "dataset.in_memory=false", "trainer.loader_workers=2", "hydra.run.dir=streamed")
    assert {name: streamed.metrics[name] for name in GOLDEN_METRICS} == GOLDEN_METRICS
    log = (streamed.output_dir / "zenexp.log").read_text()
    assert "read per batch by 2 loader workers (dataset.in_memory=false)" in log
    in_memory = run(*GOLDEN, "dataset.in_memory=true", "trainer.loader_workers=0", "hydra.run.dir=held")
    assert read_metrics(in_memory.output_dir) == read_metrics(streamed.output_dir)
    assert "held in memory (dataset.in_memory=true)" in (in_memory.output_dir / "zenexp.log").read_text()


def data_of(size_mib: float, in_memory: bool | None = None) -> ImageData:
    """A dataset whose images take `size_mib` MiB."""
    side = int((size_mib * 2**20 / 12) ** 0.5)  # 10 + 1 + 1 images of 1 x side x side bytes
    images, labels = torch.zeros(12, 1, side, side, dtype=torch.uint8), torch.zeros(12, dtype=torch.int64)
    return ImageData(
        images[:10],
        labels[:10],
        images[10:11],
        labels[:1],
        images[11:],
        labels[:1],
        ("a",),
        in_memory=in_memory,
    )


def test_a_dataset_is_held_in_memory_when_it_takes_at_most_half_the_memory_available(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(machine, "available_memory", lambda: 100 * 2**20)
    monkeypatch.setattr(machine, "cores", lambda: 8)
    assert loading.choose(data_of(45), "auto", 1).in_memory
    over = loading.choose(data_of(55), "auto", 1)
    assert not over.in_memory and over.workers == 4  # half of 8 cores
    assert "over 50 MiB, half the available memory" in str(over)
    # Two ranks each hold their own copy: each has half the room.
    assert not loading.choose(data_of(30), 3, 2).in_memory
    assert loading.choose(data_of(30), 3, 2).workers == 3
    # Set by the dataset: whatever the size.
    assert loading.choose(data_of(55, in_memory=True), 0, 1).in_memory
    assert not loading.choose(data_of(1, in_memory=False), 0, 1).in_memory


def test_augmentation_is_seeded_per_step_and_leaves_the_run_s_random_stream_alone() -> None:
    flip_crop = v2.Compose([v2.RandomCrop(8, padding=4), v2.RandomHorizontalFlip()])
    images = digits().train_images
    assert isinstance(images, torch.Tensor)
    batch = images[:16]
    augment = Augmentation(flip_crop, seed=0, rank=0)
    torch.manual_seed(1)
    before = torch.get_rng_state()
    first = augment(batch, epoch=1, step=3)
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(first, Augmentation(flip_crop, seed=0, rank=0)(batch, epoch=1, step=3))
    assert not torch.equal(first, augment(batch, epoch=1, step=4))
    assert not torch.equal(first, Augmentation(flip_crop, seed=1, rank=0)(batch, epoch=1, step=3))
    assert first.dtype == torch.uint8 and first.shape == batch.shape
    # Each image draws its own crop and flip: not one draw for the whole batch.
    assert len({tuple(image.flatten().tolist()) for image in first}) == len(batch)


class Counted(v2.Transform):
    """A user's own transform: counts the images it is given."""

    images = 0

    def forward(self, *inputs: Any) -> Any:
        Counted.images += 1
        return inputs[0]


class Shrink(v2.Transform):
    def forward(self, *inputs: Any) -> Any:
        return inputs[0][:, :4, :4]


store(builds(Counted), group="augment", name="counted")
store(builds(Shrink), group="augment", name="shrink")
add_to_hydra_store()


def test_a_user_s_augmentation_sees_training_images_only() -> None:
    Counted.images = 0
    run("augment=counted", "trainer.epochs=2", "trainer.max_steps_per_epoch=3", "trainer.batch_size=5")
    # 2 epochs x 3 steps x 5 images, and one image checked before training: no validation or test image.
    assert Counted.images == 2 * 3 * 5 + 1


def test_an_augmentation_that_changes_the_image_shape_is_refused_before_training(in_tmp_path: Path) -> None:
    with pytest.raises(
        UserError, match=r"augment: turns a \[1, 8, 8\] torch.uint8 training image into \[1, 4, 4\]"
    ):
        run("augment=shrink", "hydra.run.dir=shrunk")
    assert not (in_tmp_path / "shrunk" / "checkpoints").exists()


def test_a_run_recorded_before_augmentation_and_loaders_resumes_and_may_read_differently(
    quick_run: Path,
) -> None:
    """Its config.yaml has no augment, trainer.loader_workers or dataset.in_memory: it ran without augmentation,
    so it continues; how the images are read may change on resuming (it changes no result)."""
    config = quick_run / "config.yaml"
    saved = OmegaConf.load(config)
    assert isinstance(saved, DictConfig)
    for key in ("augment", "trainer.loader_workers", "dataset.in_memory"):
        parent, _, name = key.rpartition(".")
        (saved[parent] if parent else saved).pop(name)
    OmegaConf.save(saved, config)
    done = in_process("resume", str(quick_run), "trainer.epochs=2", "dataset.in_memory=false")
    assert done.returncode == 0, done.stderr
    log = (quick_run / "zenexp.log").read_text()
    assert log.count("held in memory") == log.count("read per batch") == 1  # the run, then its continuation
