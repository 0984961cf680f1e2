"""The CIFAR-10 CNN of the course lesson 《6. 开展和记录实验》 ("Running and recording experiments", "the lesson"
in zenexp's code and docs). It takes the dataset's image shape and class count, so it fits any dataset of at
least 16x16 pixels. The small and large MLPs are `nn.Sequential` configs of layers (`zenexp.configs`), as in
the lesson's exercise.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from zenexp.errors import UserError


class Net(nn.Module):
    """The lesson's CNN: conv 6@5 -> pool -> conv 16@5 -> pool -> fc hidden -> 84 -> classes."""

    MIN_IMAGE_SIZE = 16  # two 5x5 convolutions and two 2x2 poolings leave at least one pixel

    def __init__(
        self,
        image_shape: Sequence[int] = (3, 32, 32),
        num_classes: int = 10,
        hidden: int = 120,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        channels, height, width = image_shape
        # Each 5x5 convolution trims 4 pixels, each pooling halves: 32 -> 28 -> 14 -> 10 -> 5.
        out_h, out_w = (((height - 4) // 2) - 4) // 2, (((width - 4) // 2) - 4) // 2
        if min(height, width) < self.MIN_IMAGE_SIZE:
            size = self.MIN_IMAGE_SIZE
            raise UserError(f"Net needs images of at least {size}x{size} pixels, not {height}x{width}")
        self.features = nn.Sequential(
            nn.Conv2d(channels, 6, 5),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(6, 16, 5),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Flatten(),
        )
        self.classifier = nn.Sequential(
            nn.Linear(16 * out_h * out_w, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, 84),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.classifier(self.features(x))
        return logits
