"""Every config, typed, and the store that registers them with Hydra. No YAML anywhere.

Groups (the command-line contract): model = small | large | net, dataset = digits | cifar10 | mnist | fake,
optim = sgd | adam. `trainer`, `tracker` and `seed` are plain fields of `MainConfig`.

Configs declare their fields (`@hydrated_dataclass` or `@dataclass`), so mypy checks a user's edits and
OmegaConf rejects a badly typed override (`optim.lr=abc`) while composing, before anything runs.
`Annotated` metadata adds the bounds zenexp checks before a run (`Gt(0)`, `Interval(ge=0, lt=1)`, ...)
and the one-line description `--help` shows (`Doc`).
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, TypeVar

import torch
from annotated_types import Ge, Gt, Interval
from hydra_zen import hydrated_dataclass, store
from omegaconf import II, MISSING, OmegaConf
from torch import nn
from typing_extensions import Doc

from zenexp import data, models

T = TypeVar("T")

if TYPE_CHECKING:
    from hydra_zen.typing import Builds

    class Targets(Builds[T]):
        """Marks a config class as building a `T`, so that `instantiate(conf)` is typed `T`."""

        _target_: ClassVar[str] = ""
        # Keep attribute access and assignment checked field by field (Builds types them `Any`).
        __getattribute__ = object.__getattribute__
        __setattr__ = object.__setattr__

else:

    class Targets:
        def __class_getitem__(cls, item: object) -> type:
            return cls


# The dataset's shape and class count, read by the models through interpolation.
IMAGE_SHAPE = II("dataset.image_shape")
NUM_CLASSES = II("dataset.num_classes")

ImageShape = Annotated[tuple[int, int, int], Doc("channels, height, width of the images (from the dataset)")]
NumClasses = Annotated[int, Ge(1), Doc("number of classes (from the dataset)")]
Hidden = Annotated[int, Ge(1), Doc("width of the hidden layers")]
Dropout = Annotated[float, Interval(ge=0, lt=1), Doc("dropout probability after each hidden layer")]
LearningRate = Annotated[float, Gt(0), Doc("learning rate")]
WeightDecay = Annotated[float, Ge(0), Doc("L2 penalty")]
DataRoot = Annotated[str, Doc("folder holding the dataset's files")]
Download = Annotated[bool, Doc("download the files when missing (needs network)")]


# ---- model ----------------------------------------------------------------------------------------------


@hydrated_dataclass(models.small, hydra_convert="all")
class SmallConf(Targets[Callable[..., nn.Sequential]]):
    """Two linear layers (the default model)."""

    image_shape: ImageShape = IMAGE_SHAPE
    num_classes: NumClasses = NUM_CLASSES
    hidden: Hidden = 128
    dropout: Dropout = 0.0


@hydrated_dataclass(models.large, hydra_convert="all")
class LargeConf(Targets[Callable[..., nn.Sequential]]):
    """Three linear layers."""

    image_shape: ImageShape = IMAGE_SHAPE
    num_classes: NumClasses = NUM_CLASSES
    hidden: Hidden = 256
    dropout: Dropout = 0.0


@hydrated_dataclass(models.Net, hydra_convert="all")
class NetConf(Targets[type[models.Net]]):
    """The lesson's CIFAR-10 CNN; needs images of at least 16x16 pixels."""

    image_shape: ImageShape = IMAGE_SHAPE
    num_classes: NumClasses = NUM_CLASSES
    hidden: Hidden = 120
    dropout: Dropout = 0.0


# ---- dataset --------------------------------------------------------------------------------------------
# Partial: the task loads the data itself, after the model has been built and the config checked.
# `zen_meta` fields describe the data for interpolation and are not passed to the loader.


@hydrated_dataclass(data.digits, zen_partial=True, zen_meta={"image_shape": (1, 8, 8), "num_classes": 10})
class DigitsConf:
    """scikit-learn's bundled 8x8 handwritten digits: real data, works offline (the default)."""

    test_fraction: Annotated[float, Interval(gt=0, lt=1), Doc("share of the images held out for testing")] = (
        0.2
    )
    split_seed: Annotated[int, Doc("seed of the fixed train/test split")] = 0


@hydrated_dataclass(data.cifar10, zen_partial=True, zen_meta={"image_shape": (3, 32, 32), "num_classes": 10})
class CIFAR10Conf:
    """CIFAR-10 (torchvision's python version) under `root`."""

    root: DataRoot = "data"
    download: Download = False


@hydrated_dataclass(data.mnist, zen_partial=True, zen_meta={"image_shape": (1, 28, 28), "num_classes": 10})
class MNISTConf:
    """MNIST (torchvision's layout) under `root`."""

    root: DataRoot = "data"
    download: Download = False


@hydrated_dataclass(data.fake, zen_partial=True, hydra_convert="all")
class FakeDataConf:
    """torchvision's FakeData at CIFAR-10 shape: random images, for smoke runs and speed."""

    train_size: Annotated[int, Ge(1), Doc("number of training images")] = 1000
    test_size: Annotated[int, Ge(1), Doc("number of test images")] = 200
    image_shape: Annotated[tuple[int, int, int], Doc("channels, height, width")] = (3, 32, 32)
    num_classes: Annotated[int, Ge(2), Doc("number of classes")] = 10


# ---- optim ----------------------------------------------------------------------------------------------
# Partial: the task calls them with the model's parameters.


@hydrated_dataclass(torch.optim.SGD, zen_partial=True)
class SGDConf:
    """SGD with the lesson's settings (the default)."""

    lr: LearningRate = 0.001
    momentum: Annotated[float, Interval(ge=0, lt=1), Doc("momentum factor")] = 0.9
    weight_decay: WeightDecay = 0.0


@hydrated_dataclass(torch.optim.Adam, zen_partial=True)
class AdamConf:
    """Adam."""

    lr: LearningRate = 0.001
    weight_decay: WeightDecay = 0.0


# ---- trainer and tracker --------------------------------------------------------------------------------
# Settings, not builders: each targets its own class, so the task receives a typed instance.


class Precision(Enum):
    fp32 = "fp32"
    bf16 = "bf16"


@dataclass
class TrainerConf:
    """How to train."""

    epochs: Annotated[int, Ge(1), Doc("passes over the training split")] = 4
    batch_size: Annotated[int, Ge(1), Doc("images per step (the lesson's 4)")] = 4
    max_steps_per_epoch: Annotated[
        int | None, Ge(1), Doc("stop each epoch after this many steps (the lesson's `if i > 5: break`)")
    ] = None
    log_every_n_steps: Annotated[int, Ge(1), Doc("record the training loss every this many steps")] = 50
    checkpoint_every_n_steps: Annotated[
        int | None, Ge(1), Doc("also checkpoint every this many steps (every epoch always)")
    ] = None
    device: Annotated[str, Doc("auto (cuda when present, else cpu), cpu, cuda or cuda:N")] = "auto"
    num_threads: Annotated[int, Ge(0), Doc("CPU threads for torch; 0 keeps torch's default")] = 0
    precision: Annotated[Precision, Doc("fp32, or bf16 mixed precision (autocast)")] = Precision.fp32
    compile: Annotated[bool, Doc("torch.compile the model: slow first steps, faster after")] = False
    _target_: str = field(default=f"{__name__}.TrainerConf", init=False, repr=False)


class TrackerMode(Enum):
    offline = "offline"  # record on disk, no account needed
    local = "local"  # on disk, for the local dashboard (pip install 'swanlab[dashboard]')
    cloud = "cloud"  # upload to swanlab.cn; reads SWANLAB_API_KEY
    disabled = "disabled"  # no SwanLab run; the run directory still records everything


@dataclass
class TrackerConf:
    """Where SwanLab records the run."""

    mode: Annotated[TrackerMode, Doc("offline, local, cloud (needs SWANLAB_API_KEY) or disabled")] = (
        TrackerMode.offline
    )
    project: Annotated[str, Doc("SwanLab project")] = "zenexp"
    experiment_name: Annotated[str | None, Doc("null: named after the command-line overrides")] = None
    tags: Annotated[list[str], Doc("SwanLab tags")] = field(default_factory=list)
    description: Annotated[str | None, Doc("SwanLab description")] = None
    logdir: Annotated[str, Doc("SwanLab's folder; a relative path is inside the run directory")] = "swanlog"
    _target_: str = field(default=f"{__name__}.TrackerConf", init=False, repr=False)


# ---- top level ------------------------------------------------------------------------------------------


@dataclass
class MainConfig:
    """The whole experiment: one option from each group, plus trainer, tracker and seed."""

    defaults: list[Any] = field(
        default_factory=lambda: ["_self_", {"dataset": "digits"}, {"model": "small"}, {"optim": "sgd"}]
    )
    dataset: Any = MISSING
    model: Any = MISSING
    optim: Any = MISSING
    trainer: TrainerConf = field(default_factory=TrainerConf)
    tracker: TrackerConf = field(default_factory=TrackerConf)
    seed: Annotated[int, Doc("seeds the model's initial weights and the batch order")] = 0
    resume: Annotated[str | None, Doc("a run directory to continue from its last checkpoint")] = None
    # Name the job after zenexp (Hydra would name it after the module holding the main function), record
    # each job's outcome and the sweep's summary, and run a resumed job in the directory it continues.
    hydra: Any = field(
        default_factory=lambda: {
            "job": {"name": "zenexp"},
            "callbacks": {"sweep": {"_target_": "zenexp.sweeps.SweepRecorder"}},
            "run": {"dir": "${zenexp.either:${resume},outputs/${now:%Y-%m-%d}/${now:%H-%M-%S}}"},
        }
    )


# `${zenexp.either:a,b}` is a unless a is null (`oc.select` only replaces a missing key).
OmegaConf.register_new_resolver(
    "zenexp.either", lambda first, second: second if first is None else first, replace=True
)

model_store = store(group="model")
model_store(SmallConf(), name="small")
model_store(LargeConf(), name="large")
model_store(NetConf(), name="net")

dataset_store = store(group="dataset")
dataset_store(DigitsConf(), name="digits")
dataset_store(CIFAR10Conf(), name="cifar10")
dataset_store(MNISTConf(), name="mnist")
dataset_store(FakeDataConf(), name="fake")

optim_store = store(group="optim")
optim_store(SGDConf(), name="sgd")
optim_store(AdamConf(), name="adam")

store(MainConfig(), name="zenexp")

# A ready search, `-m hydra/sweeper=lr_model_search` (needs zenexp[sweep]): Optuna's TPE over the learning
# rate and the model, maximising test accuracy. A plain dict on top of the plugin's own `optuna` config;
# the plugin's config classes fail to merge under Hydra 1.3 on Python >= 3.10.
store(
    {
        "defaults": ["optuna", "_self_"],
        "direction": "maximize",
        "n_trials": 8,
        "n_jobs": 1,
        "max_failure_rate": 0.25,
        "sampler": {"seed": 0},
        "params": {"optim.lr": "tag(log, interval(0.0001, 0.3))", "model": "choice(small, large)"},
    },
    group="hydra/sweeper",
    name="lr_model_search",
)
