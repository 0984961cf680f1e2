from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

class Transform(nn.Module):
    def __call__(self, *inputs: Any) -> Any: ...

class Identity(Transform): ...

class Compose(Transform):
    transforms: Sequence[Callable[..., Any]]
    def __init__(self, transforms: Sequence[Callable[..., Any]]) -> None: ...

class RandomCrop(Transform):
    def __init__(
        self,
        size: int | Sequence[int],
        padding: int | Sequence[int] | None = None,
        pad_if_needed: bool = False,
        fill: float = 0,
        padding_mode: str = "constant",
    ) -> None: ...

class RandomHorizontalFlip(Transform):
    def __init__(self, p: float = 0.5) -> None: ...

class Resize(Transform):
    def __init__(self, size: int | Sequence[int], antialias: bool | None = True) -> None: ...

def __getattr__(name: str) -> Any: ...
