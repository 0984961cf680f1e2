from enum import Enum

import torch

class ImageReadMode(Enum):
    UNCHANGED = 0
    GRAY = 1
    GRAY_ALPHA = 2
    RGB = 3
    RGB_ALPHA = 4

def decode_image(
    input: torch.Tensor | str, mode: ImageReadMode = ..., apply_exif_orientation: bool = False
) -> torch.Tensor: ...
