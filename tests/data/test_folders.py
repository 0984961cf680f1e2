"""dataset=image_folder: your own image files, in torchvision's ImageFolder layout, written here as real PNG and
JPEG files."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import in_process, read_metrics, run, run_dirs
from zenexp.configs.schema import compose_config
from zenexp.data.folders import ImageFiles, image_folder

CLASSES = ("cat", "dog", "frog")
QUICKER = [
    "trainer.epochs=1",
    "trainer.max_steps_per_epoch=2",
    "trainer.batch_size=8",
    "tracker.mode=disabled",
]


def write_folder(root: Path, train: int = 8, test: int = 4, size: int = 12) -> None:
    """`root/{train,test}/<class>/<i>.png|jpg`: random 3-channel pictures, PNG and JPEG in turn."""
    rng = np.random.default_rng(0)
    for split, count in (("train", train), ("test", test)):
        for name in CLASSES:
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.{'png' if i % 2 else 'jpg'}")


def folder_run(root: Path, *overrides: str) -> list[str]:
    return [
        "dataset=image_folder",
        f"dataset.root={root}",
        "dataset.image_shape=[3,16,16]",
        *QUICKER,
        *overrides,
    ]


def test_images_labels_and_class_names_come_from_the_folders(in_tmp_path: Path) -> None:
    write_folder(in_tmp_path / "pics")
    (in_tmp_path / "pics" / "train" / "cat" / ".DS_Store").write_bytes(b"\0")  # hidden: left out
    (in_tmp_path / "pics" / "train" / ".ipynb_checkpoints").mkdir()  # hidden: not a class
    data = image_folder("pics", val_fraction=0.25, image_shape=(3, 16, 16))
    assert data.classes == CLASSES
    assert (len(data.train_labels), len(data.val_labels), len(data.test_labels)) == (18, 6, 12)
    assert data.test_labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert sorted([*data.train_labels.tolist(), *data.val_labels.tolist()]) == [0] * 8 + [1] * 8 + [2] * 8
    image = data.train_images[0]
    assert (image.shape, image.dtype, image.is_contiguous()) == ((3, 16, 16), torch.uint8, True)
    # Each label is its file's class folder; the seeded split is the same every time, another seed another.
    for images, labels in (data.split("train"), data.split("val")):
        assert isinstance(images, ImageFiles)
        assert [Path(p).parent.name for p in images.paths] == [CLASSES[i] for i in labels.tolist()]
    again = image_folder("pics", val_fraction=0.25, image_shape=(3, 16, 16))
    other = image_folder("pics", val_fraction=0.25, split_seed=1, image_shape=(3, 16, 16))
    assert torch.equal(again.val_labels, data.val_labels)
    assert isinstance(other.val_images, ImageFiles) and isinstance(data.val_images, ImageFiles)
    assert other.val_images.paths != data.val_images.paths
    # At the files' own size a PNG is its pixels, unchanged; grey is one channel.
    as_stored = image_folder("pics", image_shape=(3, 12, 12)).test_images
    written = np.array(Image.open("pics/test/cat/1.png"))
    assert torch.equal(as_stored[1], torch.from_numpy(written).permute(2, 0, 1))
    assert image_folder("pics", image_shape=(1, 12, 12)).test_images[1].shape == (1, 12, 12)


def test_the_class_count_is_read_from_the_folder_for_the_model(in_tmp_path: Path) -> None:
    write_folder(in_tmp_path / "pics")
    cfg = compose_config(["dataset=image_folder", "dataset.root=pics", "model=net"], with_hydra=False)
    assert cfg.dataset.num_classes == 3 and cfg.model.num_classes == 3
    (in_tmp_path / "pics" / "train" / "toad").mkdir()
    assert (
        compose_config(["dataset=image_folder", "dataset.root=pics"], with_hydra=False).dataset.num_classes
        == 4
    )


def test_in_memory_and_per_batch_reading_train_alike(in_tmp_path: Path) -> None:
    write_folder(in_tmp_path / "pics")
    held = run(*folder_run(in_tmp_path / "pics", "dataset.in_memory=true"))
    streamed = run(*folder_run(in_tmp_path / "pics", "dataset.in_memory=false", "trainer.loader_workers=2"))
    assert read_metrics(held.output_dir) == read_metrics(streamed.output_dir)
    assert held.metrics["test_accuracy"] == streamed.metrics["test_accuracy"]


def test_eval_names_the_folders_classes_and_refuses_renamed_ones(in_tmp_path: Path) -> None:
    write_folder(in_tmp_path / "pics")
    result = run(*folder_run(in_tmp_path / "pics", "model=net"))
    done = in_process("eval", str(result.output_dir), "tracker.mode=disabled")
    assert done.returncode == 0, done.stderr
    header = done.stdout.splitlines()[done.stdout.splitlines().index("true \\ predicted") + 1]
    assert header.split() == [*CLASSES, "accuracy"]
    (in_tmp_path / "pics" / "train" / "frog").rename(in_tmp_path / "pics" / "train" / "toad")
    (in_tmp_path / "pics" / "test" / "frog").rename(in_tmp_path / "pics" / "test" / "toad")
    done = in_process("eval", str(result.output_dir), "tracker.mode=disabled")
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "trained on the classes cat, dog, frog, but its data now holds cat, dog, toad" in done.stderr


def _folder_with(*paths: str) -> Callable[[Path], object]:
    """Three classes of images, and these (relative to the root): a folder when it ends in /, else a file."""

    def write(root: Path) -> None:
        write_folder(root)
        for path in paths:
            (root / path).mkdir() if path.endswith("/") else (root / path).write_bytes(b"x")

    return write


def _without(*folders: str, emptied: bool = False) -> Callable[[Path], object]:
    """Three classes of images, less these folders (or their files only, `emptied`)."""

    def write(root: Path) -> None:
        write_folder(root)
        for folder in folders:
            shutil.rmtree(root / folder)
            if emptied:
                (root / folder).mkdir()

    return write


# What is wrong: how it is made, the overrides, what the one line says.
BAD: dict[str, tuple[Callable[[Path], object], list[str], str]] = {
    "no folder": (lambda root: None, [], "no train/ and test/ in"),
    "no test folder": (_without("test"), [], "no test/ in"),
    "an empty class": (_without("train/dog", emptied=True), [], "train/dog: no images in this class folder"),
    "other classes": (_folder_with("test/bird/"), [], "different class folders (only in test/: bird)"),
    "one class": (
        _without(*(f"{split}/{name}" for split in ("train", "test") for name in ("dog", "frog"))),
        [],
        "holds 1 class folders; image_folder needs at least 2",
    ),
    "not an image": (_folder_with("train/cat/notes.txt"), [], "1 file is not .jpg/.jpeg/.png/.webp by name"),
    "a stray file": (_folder_with("train/x.png"), [], "train: 1 outside any class folder (first: x.png)"),
    "too few images": (
        _folder_with(),
        ["dataset.val_fraction=0.01"],
        "holds out 0 of the 24 training images",
    ),
    "a wrong class count": (_folder_with(), ["dataset.num_classes=5"], "holds 3 class folders; leave"),
    "four channels": (_folder_with(), ["dataset.image_shape=[4,16,16]"], "1 (grey) or 3 (RGB) channels"),
    "too small for net": (
        _folder_with(),
        ["dataset.image_shape=[3,8,8]", "model=net"],
        "model=net needs images of at least 16x16 pixels; choose a dataset.image_shape of 16x16 or more",
    ),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_folders_are_one_line_before_any_run_directory(case: str, in_tmp_path: Path) -> None:
    make, overrides, expected = BAD[case]
    make(in_tmp_path / "pics")
    done = in_process(*folder_run(in_tmp_path / "pics", *overrides))
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1 and expected in done.stderr, done.stderr
    assert not (in_tmp_path / "outputs").exists()


def test_a_corrupt_image_is_one_line_naming_it(in_tmp_path: Path) -> None:
    write_folder(in_tmp_path / "pics")
    bad = in_tmp_path / "pics" / "train" / "dog" / "3.png"
    bad.write_bytes(bad.read_bytes()[:40])  # a PNG cut short
    # In memory: found while reading, before the run records anything; Hydra's files stay, as for a damaged
    # CIFAR-10 batch (tests/checks/test_security.py), and no record of a run.
    done = in_process(*folder_run(in_tmp_path / "pics", "dataset.in_memory=true", "trainer.loader_workers=2"))
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert (
        done.stderr.splitlines()[-1]
        == f"zenexp: error: {bad}: cannot decode this image (Out of bound read in "
        "decode_png); replace or remove the file"
    )
    (run_dir,) = run_dirs(in_tmp_path / "outputs")
    assert {path.name for path in run_dir.iterdir()} == {".hydra", "zenexp.log"}
    # Read per batch: found when the image is read (here the test split's, at the end), named the same way.
    bad.rename(in_tmp_path / "pics" / "test" / "dog" / "3.png")
    done = in_process(
        *folder_run(in_tmp_path / "pics", "dataset.in_memory=false", "trainer.loader_workers=2")
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.splitlines()[-1].startswith(
        f"zenexp: error: {in_tmp_path / 'pics/test/dog/3.png'}: cannot"
    )


@pytest.mark.slow
def test_a_corrupt_image_read_by_workers_ends_the_process(in_tmp_path: Path) -> None:
    """A real process: the loader's workers ignore SIGTERM, so workers left running would keep the interpreter
    waiting for them at exit, forever."""
    write_folder(in_tmp_path / "pics")
    (in_tmp_path / "pics" / "train" / "dog" / "3.png").write_bytes(b"not a picture")
    done = subprocess.run(
        [sys.executable, "-m", "zenexp", *folder_run(in_tmp_path / "pics", "trainer.loader_workers=2")],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 1 and "3.png: cannot decode this image" in done.stderr, done.stderr


def test_a_16_bit_png_is_read_as_its_8_bit_pixels(tmp_path: Path) -> None:
    pixels = np.arange(256, dtype=np.uint16).reshape(16, 16) * 257  # 0..65535: 8-bit value v is v * 257
    Image.fromarray(pixels).save(tmp_path / "deep.png")
    image = ImageFiles([str(tmp_path / "deep.png")], (1, 16, 16))[0]
    assert image.dtype == torch.uint8 and torch.equal(
        image[0], torch.arange(256, dtype=torch.uint8).reshape(16, 16)
    )
