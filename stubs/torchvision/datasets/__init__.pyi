from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import Tensor
from torch.utils.data import Dataset

class VisionDataset(Dataset[tuple[Any, Any]]):
    root: str
    transform: Callable[..., Any] | None
    target_transform: Callable[..., Any] | None
    def __getitem__(self, index: int) -> tuple[Any, Any]: ...
    def __len__(self) -> int: ...

class CIFAR10(VisionDataset):
    data: Any  # numpy uint8 array, N x 32 x 32 x 3
    targets: list[int]
    classes: list[str]
    def __init__(
        self,
        root: str | Path,
        train: bool = True,
        transform: Callable[..., Any] | None = None,
        target_transform: Callable[..., Any] | None = None,
        download: bool = False,
    ) -> None: ...

class CIFAR100(CIFAR10): ...

class MNIST(VisionDataset):
    data: Tensor  # uint8, N x 28 x 28
    targets: Tensor
    classes: list[str]
    raw_folder: str
    def __init__(
        self,
        root: str | Path,
        train: bool = True,
        transform: Callable[..., Any] | None = None,
        target_transform: Callable[..., Any] | None = None,
        download: bool = False,
    ) -> None: ...

class FashionMNIST(MNIST): ...

class FakeData(Dataset[tuple[Any, int]]):
    def __init__(
        self,
        size: int = 1000,
        image_size: tuple[int, int, int] = (3, 224, 224),
        num_classes: int = 10,
        transform: Callable[..., Any] | None = None,
        target_transform: Callable[..., Any] | None = None,
        random_offset: int = 0,
    ) -> None: ...
    def __getitem__(self, index: int) -> tuple[Any, int]: ...
    def __len__(self) -> int: ...
