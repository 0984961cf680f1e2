"""How the model learns: optimizers, learning-rate schedulers, augmentation."""

from __future__ import annotations

from dataclasses import field
from typing import Annotated, Any

import torch
import torchvision.transforms.v2 as v2
from annotated_types import Ge, Gt, Interval
from hydra_zen import builds, hydrated_dataclass
from omegaconf import II
from torch.optim.lr_scheduler import ConstantLR, CosineAnnealingLR, StepLR
from typing_extensions import Doc

from zenexp.configs.fields import LearningRate, PartialTargets, Targets, WeightDecay

# ---- optim ----------------------------------------------------------------------------------------------
# Partial: the task calls them with the model's parameters.


@hydrated_dataclass(torch.optim.SGD, zen_partial=True)
class SGDConf(PartialTargets[type[torch.optim.SGD]]):
    """SGD with the lesson's settings (the default)."""

    lr: LearningRate = 0.001
    momentum: Annotated[float, Interval(ge=0, lt=1), Doc("momentum factor")] = 0.9
    weight_decay: WeightDecay = 0.0


@hydrated_dataclass(torch.optim.Adam, zen_partial=True)
class AdamConf(PartialTargets[type[torch.optim.Adam]]):
    """Adam."""

    lr: LearningRate = 0.001
    weight_decay: WeightDecay = 0.0


# ---- scheduler ------------------------------------------------------------------------------------------
# Partial: the task calls them with the optimizer, and steps them once at the end of every epoch.


@hydrated_dataclass(ConstantLR, zen_partial=True)
class NoSchedulerConf(PartialTargets[type[ConstantLR]]):
    """The learning rate as the optimizer sets it (the default): ConstantLR with factor 1.

    A scheduler that changes nothing, so that every run has one to step and to checkpoint."""

    factor: Annotated[float, Interval(gt=0, le=1), Doc("multiplies the learning rate (1: unchanged)")] = 1.0
    total_iters: Annotated[int, Ge(0), Doc("epochs the factor applies for")] = 0


@hydrated_dataclass(StepLR, zen_partial=True)
class StepConf(PartialTargets[type[StepLR]]):
    """Multiply the learning rate by `gamma` every `step_size` epochs."""

    step_size: Annotated[int, Ge(1), Doc("epochs between decays")] = 2
    gamma: Annotated[float, Gt(0), Doc("factor applied at each decay")] = 0.1


@hydrated_dataclass(CosineAnnealingLR, zen_partial=True)
class CosineConf(PartialTargets[type[CosineAnnealingLR]]):
    """Anneal the learning rate along a cosine to `eta_min` over `T_max` epochs."""

    T_max: Annotated[int, Ge(1), Doc("epochs to reach eta_min (the run's epochs)")] = II("trainer.epochs")
    eta_min: Annotated[float, Ge(0), Doc("the last learning rate")] = 0.0


# ---- augment --------------------------------------------------------------------------------------------
# Transforms of each training image (torchvision.transforms.v2) before it is normalised; never of validation
# or test images. zenexp.data.augment seeds them per step, so a resumed run draws what an uninterrupted one drew.


NoAugmentConf = builds(v2.Identity)
NoAugmentConf.__doc__ = "No augmentation (the default)."


@hydrated_dataclass(v2.RandomCrop, hydra_convert="all")
class RandomCropConf(Targets[type[v2.RandomCrop]]):
    """A random crop of `size` from the image padded by `padding` pixels (zeros) on each side."""

    size: Annotated[list[int], Doc("height, width of the crop (the dataset's image size)")] = field(
        default_factory=lambda: [II("dataset.image_shape.1"), II("dataset.image_shape.2")]
    )
    padding: Annotated[int, Ge(0), Doc("pixels added on each side before cropping")] = 4


@hydrated_dataclass(v2.RandomHorizontalFlip)
class HorizontalFlipConf(Targets[type[v2.RandomHorizontalFlip]]):
    """Flip the image left to right with probability `p`."""

    p: Annotated[float, Interval(ge=0, le=1), Doc("probability of flipping")] = 0.5


@hydrated_dataclass(v2.Compose)
class FlipCropConf(Targets[type[v2.Compose]]):
    """The standard CIFAR recipe: pad by 4 pixels, crop at random to the image's size, flip half the images.

    `augment.transforms.0.padding=2` changes the padding."""

    transforms: Annotated[list[Any], Doc("the transforms, applied in order")] = field(
        default_factory=lambda: [RandomCropConf(), HorizontalFlipConf()]
    )
