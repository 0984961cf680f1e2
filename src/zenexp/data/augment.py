"""Augmentation of training batches: a transform (the `augment` group, `torchvision.transforms.v2`) applied to
each training image, never to validation or test images.

Its random draws are seeded by the run's seed, the epoch, the step and the rank, in a random stream of their
own: a resumed run draws exactly what an uninterrupted one drew, whichever path (in memory or a DataLoader)
read the batch, and the model's own random numbers (dropout) do not move.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torchvision.transforms.v2 as v2

from zenexp.errors import UserError

Transform = Callable[[torch.Tensor], torch.Tensor]


class Augmentation:
    def __init__(self, transform: Transform, seed: int, rank: int) -> None:
        self.transform = None if isinstance(transform, v2.Identity) else transform
        self.seed, self.rank = seed, rank

    def __call__(self, images: torch.Tensor, epoch: int, step: int) -> torch.Tensor:
        """The batch `images` (N x C x H x W, as stored), each image transformed; unchanged for `none`."""
        if self.transform is None:
            return images
        with torch.random.fork_rng(devices=[]):
            # The CPU generator alone (torch.manual_seed would reseed every CUDA one too: dropout's stream).
            torch.default_generator.manual_seed(hash((self.seed, epoch, step, self.rank)) % 2**63)
            return torch.stack([self.transform(image) for image in images])

    def check(self, image: torch.Tensor) -> None:
        """Refuse, before training, a transform that does not give back an image of the same shape and type."""
        if self.transform is None:
            return
        try:
            with torch.random.fork_rng(devices=[]):
                out = self.transform(image)
        except Exception as error:  # noqa: BLE001  (a user's transform may raise anything)
            raise UserError(
                f"augment: fails on a training image of shape {list(image.shape)}: {error}"
            ) from error
        if not isinstance(out, torch.Tensor) or (out.shape, out.dtype) != (image.shape, image.dtype):
            got = f"{list(out.shape)} {out.dtype}" if isinstance(out, torch.Tensor) else type(out).__name__
            raise UserError(
                f"augment: turns a {list(image.shape)} {image.dtype} training image into {got}; an augmentation "
                f"must keep the image's shape and type (the model takes dataset.image_shape)"
            )
