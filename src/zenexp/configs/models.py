"""Model configs: small and large (`nn.Sequential` built from nested layer configs) and the lesson's CNN."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from hydra_zen import builds, hydrated_dataclass
from torch import nn
from typing_extensions import dataclass_transform

from zenexp.configs.fields import IMAGE_SHAPE, NUM_CLASSES, Dropout, Hidden, ImageShape, NumClasses, Targets
from zenexp.run import models

# ---- model ----------------------------------------------------------------------------------------------
# small and large are the lesson's exercise: a `torch.nn.Sequential` of linear layers, built recursively from
# nested layer configs, each layer's input interpolated from the previous layer's output. The class's own
# fields (`hidden`, `dropout`) are knobs the layers read; hydra-zen's `zen_meta` keeps them out of the call.


T = TypeVar("T")


def linear(in_features: Any, out_features: Any) -> Any:
    return builds(nn.Linear, in_features=in_features, out_features=out_features)


def hidden_block(in_features: Any) -> list[Any]:
    """Linear -> ReLU -> Dropout, `model.hidden` wide."""
    return [linear(in_features, "${...hidden}"), builds(nn.ReLU), builds(nn.Dropout, p="${...dropout}")]


@dataclass_transform()
def sequential(*layers: Any) -> Callable[[type[T]], type[T]]:
    """Configures `torch.nn.Sequential(*layers)`; the decorated class's fields are knobs, not arguments."""

    def configure(cls: type[T]) -> type[T]:
        knobs = {name: getattr(cls, name) for name in cls.__annotations__}
        configured = hydrated_dataclass(nn.Sequential, *layers, zen_meta=knobs)(cls)
        configured.__annotations__.update(cls.__annotations__)  # zen_meta types its fields `Any`
        return configured

    return configure


@sequential(
    builds(nn.Flatten),
    *hidden_block("${zenexp.size:${dataset.image_shape}}"),
    linear("${..[1].out_features}", NUM_CLASSES),
)
class SmallConf(Targets[type[nn.Sequential]]):
    """Two linear layers (the default): flatten -> hidden -> classes."""

    hidden: Hidden = 128
    dropout: Dropout = 0.0


@sequential(
    builds(nn.Flatten),
    *hidden_block("${zenexp.size:${dataset.image_shape}}"),
    *hidden_block("${..[1].out_features}"),
    linear("${..[4].out_features}", NUM_CLASSES),
)
class LargeConf(Targets[type[nn.Sequential]]):
    """Three linear layers: flatten -> hidden -> hidden -> classes."""

    hidden: Hidden = 256
    dropout: Dropout = 0.0


@hydrated_dataclass(models.Net, hydra_convert="all")
class NetConf(Targets[type[models.Net]]):
    """The lesson's CIFAR-10 CNN; needs images of at least 16x16 pixels."""

    image_shape: ImageShape = IMAGE_SHAPE
    num_classes: NumClasses = NUM_CLASSES
    hidden: Hidden = 120
    dropout: Dropout = 0.0
