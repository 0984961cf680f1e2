import torch

def resize(
    inpt: torch.Tensor,
    size: list[int] | None,
    interpolation: str | int = ...,
    max_size: int | None = None,
    antialias: bool | None = True,
) -> torch.Tensor: ...
