"""A user's own torchvision dataset in the dataset group (`TorchvisionConf` with `builds(...)` of its splits):
read from real files in their real formats, trained on, refused in one line when its files are missing."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.core.config_store import ConfigStore
from hydra_zen import ZenStore, builds, instantiate
from torchvision.datasets import CIFAR100, FakeData, FashionMNIST
from torchvision.transforms import PILToTensor

from tests.conftest import in_process, run, write_mnist
from zenexp.configs import TorchvisionConf, clear_slot_first
from zenexp.data.datasets import ImageData, Images, held_out
from zenexp.data.vision import torchvision_dataset
from zenexp.errors import UserError

FASHION = TorchvisionConf(
    train=builds(FashionMNIST, root="data", train=True),
    test=builds(FashionMNIST, root="data", train=False),
    image_shape=(1, 28, 28),
    num_classes=10,
)

QUICK = ["trainer.epochs=1", "trainer.max_steps_per_epoch=2", "tracker.mode=disabled"]


@pytest.fixture
def stored() -> Iterator[None]:
    """`dataset=tv_fashion`, a user's stored config, for this test only: other tests list the options."""
    mine = ZenStore("test_torchvision_datasets")
    mine(FASHION, group="dataset", name="tv_fashion")
    mine.add_to_hydra_store()
    clear_slot_first()
    yield
    del ConfigStore.instance().repo["dataset"]["tv_fashion.yaml"]


def whole(images: Images) -> torch.Tensor:
    """A split's images held in memory, as one uint8 tensor."""
    assert isinstance(images, torch.Tensor) and images.dtype == torch.uint8
    return images


def idx_images(path: Path) -> torch.Tensor:
    return torch.from_numpy(
        np.frombuffer(path.read_bytes()[16:], dtype=np.uint8).reshape(-1, 1, 28, 28).copy()
    )


def idx_labels(path: Path) -> torch.Tensor:
    return torch.from_numpy(np.frombuffer(path.read_bytes()[8:], dtype=np.uint8).astype(np.int64))


def write_cifar100(root: Path, train: int = 30, test: int = 10) -> None:
    """Tiny CIFAR-100 files in torchvision's python-pickle layout."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, count in (("train", train), ("test", test)):
        batch = {
            "data": rng.integers(0, 256, size=(count, 3 * 32 * 32), dtype=np.uint8),
            "fine_labels": [int(i * 7 % 100) for i in range(count)],
            "coarse_labels": [int(i % 20) for i in range(count)],
        }
        (folder / name).write_bytes(pickle.dumps(batch))
    (folder / "meta").write_bytes(pickle.dumps({"fine_label_names": [f"fine{i}" for i in range(100)]}))


def test_fashion_mnist_is_taken_whole_as_uint8_with_a_seeded_validation_split(in_tmp_path: Path) -> None:
    write_mnist(in_tmp_path / "data", train=60, test=20, name="FashionMNIST")
    loaded = instantiate(FASHION)()
    raw = in_tmp_path / "data" / "FashionMNIST" / "raw"
    images, labels = idx_images(raw / "train-images-idx3-ubyte"), idx_labels(raw / "train-labels-idx1-ubyte")
    val, kept = held_out(60, 0.1, 0)
    assert torch.equal(whole(loaded.train_images), images[kept]) and torch.equal(
        loaded.train_labels, labels[kept]
    )
    assert torch.equal(whole(loaded.val_images), images[val]) and torch.equal(loaded.val_labels, labels[val])
    assert torch.equal(whole(loaded.test_images), idx_images(raw / "t10k-images-idx3-ubyte"))
    assert loaded.test_labels.dtype == torch.int64 and len(loaded.test_labels) == 20
    assert loaded.classes[0] == "T-shirt/top" and len(loaded.classes) == 10
    other = instantiate(FASHION, split_seed=1)()
    assert not torch.equal(whole(other.val_images), whole(loaded.val_images))


def test_a_dataset_with_a_transform_is_read_per_item_to_the_same_images(in_tmp_path: Path) -> None:
    write_mnist(in_tmp_path / "data", train=30, test=10, name="FashionMNIST")
    taken_whole = instantiate(FASHION)()
    per_item = torchvision_dataset(
        FashionMNIST("data", train=True, transform=PILToTensor()),
        FashionMNIST("data", train=False, transform=PILToTensor()),
        image_shape=(1, 28, 28),
        num_classes=10,
    )
    assert not isinstance(per_item.train_images, torch.Tensor)
    for name in ("train", "val", "test"):
        images, labels = per_item.split(name)
        read = torch.stack([images[i] for i in range(len(images))])
        assert torch.equal(read, whole(taken_whole.split(name)[0]))
        assert torch.equal(labels, taken_whole.split(name)[1])


def test_a_dataset_without_data_or_targets_gives_its_items_and_numbered_classes() -> None:
    fake = FakeData(12, (3, 8, 6), num_classes=4)
    loaded = torchvision_dataset(fake, fake, image_shape=(3, 8, 6), num_classes=4, val_fraction=0.25)
    assert loaded.classes == ("0", "1", "2", "3") and loaded.image_shape() == (3, 8, 6)
    assert len(loaded.train_images) == 9 and len(loaded.val_images) == 3
    first = PILToTensor()(fake[0][0])
    assert torch.equal(loaded.test_images[0], first) and loaded.test_labels[0] == fake[0][1]


def test_cifar100_is_taken_whole_as_channels_first(
    in_tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_cifar100(in_tmp_path / "data")
    # torchvision reads only the official files (by their MD5); these are tiny ones in the same format.
    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity", lambda *args: True)
    conf = TorchvisionConf(
        train=builds(CIFAR100, root="data", train=True),
        test=builds(CIFAR100, root="data", train=False),
        image_shape=(3, 32, 32),
        num_classes=100,
    )
    loaded: ImageData = instantiate(conf)()
    test = pickle.loads((in_tmp_path / "data" / "cifar-100-python" / "test").read_bytes())
    assert torch.equal(whole(loaded.test_images), torch.from_numpy(test["data"]).reshape(-1, 3, 32, 32))
    assert loaded.test_labels.tolist() == test["fine_labels"]
    assert loaded.classes[:2] == ("fine0", "fine1") and len(loaded.train_images) == 27


@pytest.mark.usefixtures("stored")
def test_a_stored_torchvision_dataset_trains_and_is_checked() -> None:
    write_mnist(Path("data"), train=60, test=20, name="FashionMNIST")
    result = run("dataset=tv_fashion", *QUICK)
    assert 0 <= result.metrics["test_accuracy"] <= 1
    assert in_process("check", "dataset=tv_fashion", *QUICK).returncode == 0
    helped = in_process("--help")
    assert helped.returncode == 0 and "tv_fashion" in helped.stdout
    for hostile in ("dataset.train._target_=os.system", "dataset.train={_target_:os.system,command:ls}"):
        refused = in_process("dataset=tv_fashion", hostile, *QUICK)
        assert refused.returncode != 0 and "os.system" in refused.stderr, refused.stderr


@pytest.mark.usefixtures("stored")
def test_missing_files_are_one_line() -> None:
    done = in_process("dataset=tv_fashion", *QUICK)
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert f"dataset.train: FashionMNIST cannot read its files under {Path('data').resolve()}" in done.stderr


def test_a_wrong_shape_or_class_count_is_one_line(in_tmp_path: Path) -> None:
    write_mnist(in_tmp_path / "data", train=20, test=10, name="FashionMNIST")
    with pytest.raises(
        UserError, match=r"FashionMNIST holds 10 classes of \[1, 28, 28\] images, but the config"
    ):
        instantiate(FASHION, image_shape=(3, 32, 32))()
