"""Every config, typed, and the store that registers them with Hydra. No YAML anywhere.

"The lesson" is the course lesson 《6. 开展和记录实验》 ("Running and recording experiments"), which zenexp grows out of:
its CNN, its SGD settings and batch size are the defaults, and its YAML exercises are done here in Python.

Groups (the command-line contract): model = small | large | net, dataset = digits | cifar10 | mnist | fake | image_folder,
optim = sgd | adam, scheduler = none | step | cosine, augment = none | flip_crop, experiment = lesson | lesson_fake (presets). `trainer`, `tracker` and `seed` are plain
fields of `MainConfig`.

Configs declare their fields (`@hydrated_dataclass` or `@dataclass`), so mypy checks a user's edits and
OmegaConf rejects a badly typed override (`optim.lr=abc`) while composing, before anything runs.
`Annotated` metadata adds the bounds zenexp checks before a run (`Gt(0)`, `Interval(ge=0, lt=1)`, ...)
and the one-line description `--help` shows (`Doc`).
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, TypeVar

import torch
import torchvision.transforms.v2 as v2
from annotated_types import Ge, Gt, Interval
from hydra.core.config_store import ConfigStore
from hydra_zen import builds, hydrated_dataclass, store
from omegaconf import II, MISSING, DictConfig, OmegaConf, open_dict
from torch import nn
from torch.optim.lr_scheduler import ConstantLR, CosineAnnealingLR, LRScheduler, StepLR
from typing_extensions import Doc, dataclass_transform

from zenexp.data import datasets, folders
from zenexp.run import models, rundir

T = TypeVar("T")

if TYPE_CHECKING:
    from hydra_zen.typing import Builds, HydraPartialBuilds, PartialBuilds
    from torch.utils.data import Dataset

    class Targets(Builds[T]):
        """Marks a config class as building a `T`, so that `instantiate(conf)` is typed `T`."""

        _target_: ClassVar[str] = ""
        # Keep attribute access and assignment checked field by field (Builds types them `Any`).
        __getattribute__ = object.__getattribute__
        __setattr__ = object.__setattr__

    class PartialTargets(HydraPartialBuilds[T]):
        """Marks a config class as a partial `T`: `instantiate(conf)` is a `functools.partial`."""

        _target_: ClassVar[str] = ""
        __getattribute__ = object.__getattribute__
        __setattr__ = object.__setattr__

    # What each slot of `MainConfig` accepts: a config that builds a model, a partial that loads the data, a
    # partial that makes an optimizer from the parameters. A user's own `builds(..., populate_full_signature=True)`
    # fits its slot too; a config in the wrong slot is a mypy error.
    ModelConfig = Builds[Callable[..., nn.Module]]
    DatasetConfig = PartialBuilds[Callable[..., datasets.ImageData]]
    OptimConfig = PartialBuilds[Callable[..., torch.optim.Optimizer]]
    SchedulerConfig = PartialBuilds[Callable[..., LRScheduler]]
    AugmentConfig = Builds[Callable[..., Callable[[torch.Tensor], torch.Tensor]]]
    # A torchvision dataset (`builds(FashionMNIST, root=..., train=True)`, the class or an instance).
    VisionDatasetConfig = type[Builds[Callable[..., Dataset[Any]]]] | Builds[Callable[..., Dataset[Any]]]

else:

    class Targets:
        def __class_getitem__(cls, item: object) -> type:
            return cls

    PartialTargets = Targets
    ModelConfig = DatasetConfig = OptimConfig = SchedulerConfig = AugmentConfig = VisionDatasetConfig = Any


# The dataset's shape and class count, read by the models through interpolation.
IMAGE_SHAPE = II("dataset.image_shape")
NUM_CLASSES = II("dataset.num_classes")
# `${zenexp.size:${dataset.image_shape}}`: the number of values in one image (the first linear layer's input).
OmegaConf.register_new_resolver("zenexp.size", lambda shape: math.prod(shape), replace=True)
# `${zenexp.class_count:${.root}}`: the class folders of an image folder (image_folder's num_classes).
OmegaConf.register_new_resolver("zenexp.class_count", folders.class_count, replace=True)


class Fixed:
    """`Annotated` marker of a dataset fact (image shape, class count): set by the data, not by the user."""


@dataclass(frozen=True)
class Words:
    """`Annotated` metadata of a number field that also takes these words (`trainer.num_threads=auto`)."""

    allowed: tuple[str, ...]


if TYPE_CHECKING:
    ThreadCount = int | Literal["auto"]
else:
    ThreadCount = int | str  # OmegaConf takes a union of int and str (not a Literal); the checks allow `auto`


ImageShape = Annotated[
    tuple[int, int, int], Ge(1), Doc("channels, height, width of the images (from the dataset)")
]
# numpy takes seeds below 2**32; torch's generators take the same range here.
Seed = Interval(ge=0, lt=2**32)
NumClasses = Annotated[int, Ge(1), Doc("number of classes (from the dataset)")]
Hidden = Annotated[int, Ge(1), Doc("width of every hidden layer")]
Dropout = Annotated[float, Interval(ge=0, lt=1), Doc("dropout probability after each hidden layer")]
LearningRate = Annotated[float, Gt(0), Doc("learning rate")]
WeightDecay = Annotated[float, Ge(0), Doc("L2 penalty")]
DataRoot = Annotated[str, Doc("folder holding the dataset's files")]
Download = Annotated[bool, Doc("download the files when missing (needs network)")]
ValFraction = Annotated[
    float, Interval(gt=0, lt=1), Doc("share of the images held out for validation (model selection)")
]
SplitSeed = Annotated[int, Seed, Doc("seed of the fixed split into training, validation and test images")]
FixedShape = Annotated[tuple[int, int, int], Fixed, Doc("channels, height, width (what the files hold)")]
FixedClasses = Annotated[int, Fixed, Doc("number of classes (what the files hold)")]
InMemory = Annotated[
    bool | None,
    Doc(
        "true: hold the images in memory (uint8); false: read them per batch (trainer.loader_workers); "
        "null: in memory when they take at most half the memory available"
    ),
]


# ---- model ----------------------------------------------------------------------------------------------
# small and large are the lesson's exercise: a `torch.nn.Sequential` of linear layers, built recursively from
# nested layer configs, each layer's input interpolated from the previous layer's output. The class's own
# fields (`hidden`, `dropout`) are knobs the layers read; hydra-zen's `zen_meta` keeps them out of the call.


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


# ---- dataset --------------------------------------------------------------------------------------------
# Partial: the task loads the data itself, after the model has been built and the config checked.
# `image_shape` and `num_classes` say what the files hold; the models read them, the loaders check them.


@hydrated_dataclass(datasets.digits, zen_partial=True, hydra_convert="all")
class DigitsConf(PartialTargets[Callable[..., datasets.ImageData]]):
    """scikit-learn's bundled 8x8 handwritten digits: real data, works offline (the default)."""

    test_fraction: Annotated[float, Interval(gt=0, lt=1), Doc("share of the images held out for testing")] = (
        0.2
    )
    val_fraction: ValFraction = 0.1
    split_seed: SplitSeed = 0
    image_shape: FixedShape = (1, 8, 8)
    num_classes: FixedClasses = 10
    in_memory: InMemory = None


@hydrated_dataclass(datasets.cifar10, zen_partial=True, hydra_convert="all")
class CIFAR10Conf(PartialTargets[Callable[..., datasets.ImageData]]):
    """CIFAR-10 (torchvision's python version) under `root`."""

    root: DataRoot = "data"
    download: Download = False
    val_fraction: ValFraction = 0.1
    split_seed: SplitSeed = 0
    image_shape: FixedShape = (3, 32, 32)
    num_classes: FixedClasses = 10
    in_memory: InMemory = None


@hydrated_dataclass(datasets.mnist, zen_partial=True, hydra_convert="all")
class MNISTConf(PartialTargets[Callable[..., datasets.ImageData]]):
    """MNIST (torchvision's layout) under `root`."""

    root: DataRoot = "data"
    download: Download = False
    val_fraction: ValFraction = 0.1
    split_seed: SplitSeed = 0
    image_shape: FixedShape = (1, 28, 28)
    num_classes: FixedClasses = 10
    in_memory: InMemory = None


@hydrated_dataclass(datasets.fake, zen_partial=True, hydra_convert="all")
class FakeDataConf(PartialTargets[Callable[..., datasets.ImageData]]):
    """torchvision's FakeData at CIFAR-10 shape: random images, for smoke runs and speed."""

    train_size: Annotated[int, Ge(1), Doc("number of training images")] = 1000
    val_size: Annotated[int, Ge(1), Doc("number of validation images")] = 200
    test_size: Annotated[int, Ge(1), Doc("number of test images")] = 200
    image_shape: Annotated[tuple[int, int, int], Ge(1), Doc("channels, height, width")] = (3, 32, 32)
    num_classes: Annotated[int, Ge(2), Doc("number of classes")] = 10
    in_memory: InMemory = None


@hydrated_dataclass(
    datasets.torchvision_dataset, zen_partial=True, hydra_convert="all", hydra_recursive=False
)
class TorchvisionConf(PartialTargets[Callable[..., datasets.ImageData]]):
    """A torchvision dataset of your own, its training and test splits given by `builds(...)`.

    The splits are built when the run loads its data (a missing file is then one line); validation is carved
    from `train`. Not stored: the user stores one per dataset, with its `image_shape` and `num_classes`."""

    train: Annotated[VisionDatasetConfig, Doc("the training split (validation is carved from it)")]
    test: Annotated[VisionDatasetConfig, Doc("the test split")]
    image_shape: ImageShape
    num_classes: NumClasses
    val_fraction: ValFraction = 0.1
    split_seed: SplitSeed = 0
    in_memory: InMemory = None


@hydrated_dataclass(folders.image_folder, zen_partial=True, hydra_convert="all")
class ImageFolderConf(PartialTargets[Callable[..., datasets.ImageData]]):
    """Your own image files, one folder per class: root/train/<class>/* and root/test/<class>/*.

    torchvision's ImageFolder layout; each image is resized to `image_shape`; validation is a seeded
    `val_fraction` of `train`; `num_classes` counts the class folders when the config is resolved."""

    root: Annotated[str, Doc("folder holding train/<class>/ and test/<class>/ with the image files")] = "data"
    val_fraction: ValFraction = 0.1
    split_seed: SplitSeed = 0
    image_shape: Annotated[
        tuple[int, int, int],
        Ge(1),
        Doc("channels (1 grey, 3 RGB), height, width: every image is resized to it"),
    ] = (3, 32, 32)
    num_classes: Annotated[
        int, Ge(1), Doc("number of classes (counted: the class folders in root/train)")
    ] = II("zenexp.class_count:${.root}")
    in_memory: InMemory = None


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


# ---- trainer and tracker --------------------------------------------------------------------------------
# Settings, not builders: each targets its own class, so the task receives a typed instance.


class Precision(Enum):
    fp32 = "fp32"
    bf16 = "bf16"


@dataclass
class TrainerConf:
    """How to train."""

    epochs: Annotated[int, Ge(1), Doc("passes over the training split")] = 4
    batch_size: Annotated[
        int, Ge(1), Doc("images per step (the lesson's 4); with several devices, over all of them together")
    ] = 4
    max_steps_per_epoch: Annotated[
        int | None, Ge(1), Doc("stop each epoch after this many steps (the lesson's `if i > 5: break`)")
    ] = None
    log_every_n_steps: Annotated[int, Ge(1), Doc("record the training loss every this many steps")] = 50
    checkpoint_every_n_steps: Annotated[
        int | None, Ge(1), Doc("also checkpoint every this many steps (every epoch always)")
    ] = None
    device: Annotated[str, Doc("auto (cuda when present, else cpu), cpu, cuda or cuda:N")] = "auto"
    devices: Annotated[
        int,
        Interval(ge=1, le=64),
        Doc("train on this many devices per node, data-parallel: CUDA devices, or CPU processes (gloo)"),
    ] = 1
    nodes: Annotated[
        int,
        Interval(ge=1, le=1024),
        Doc("nodes, each with trainer.devices ranks (Slurm: hydra/launcher=slurm)"),
    ] = 1
    # auto: the cores this job may use, shared with the jobs and ranks beside it, no more than are idle
    # (zenexp.parallel.machine; README, "Threads"; benchmarks/threads.py).
    num_threads: Annotated[
        ThreadCount,
        Interval(ge=0, le=1024),
        Words(("auto",)),
        Doc(
            "CPU threads for torch; auto: this job's share of the idle cores; 0: torch's default "
            "(the count used is recorded in run.json)"
        ),
    ] = "auto"
    # auto: half this job's share of the cores (zenexp.data.loading.workers_for).
    loader_workers: Annotated[
        ThreadCount,
        Interval(ge=0, le=64),
        Words(("auto",)),
        Doc(
            "processes that read images per batch (a dataset not held in memory), and read a folder into "
            "memory; 0: the training process itself; auto: half this job's share of the cores, at most 8"
        ),
    ] = "auto"
    precision: Annotated[Precision, Doc("fp32, or bf16 mixed precision (autocast)")] = Precision.fp32
    compile: Annotated[bool, Doc("torch.compile the model: slow first steps, faster after")] = False
    early_stop_patience: Annotated[
        int | None, Ge(1), Doc("stop when validation accuracy has not improved for this many epochs")
    ] = None
    grad_clip_norm: Annotated[
        float | None, Gt(0), Doc("clip the gradients' total norm to this (torch.nn.utils.clip_grad_norm_)")
    ] = None
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
    banners: Annotated[
        bool, Doc("show SwanLab's own messages (its banner, the sync hint) on the console; always in the log")
    ] = False
    setup_timeout_s: Annotated[
        float, Gt(0), Doc("cloud: give up reaching the server after this long, and record offline")
    ] = 10.0
    _target_: str = field(default=f"{__name__}.TrackerConf", init=False, repr=False)


# ---- top level ----
# zenexp's first Hydra callback; building it resolves the guard that checks the whole job (zenexp.checks).
GUARD = {"_target_": "zenexp.checks.guard.Guard", "verdict": "${zenexp.guard:}"}
# The slots of an experiment, each a config group, with the option an empty slot takes.
SLOTS = {"dataset": "digits", "model": "small", "optim": "sgd", "scheduler": "none", "augment": "none"}


def slot_defaults(filled: set[str]) -> list[Any]:
    """Hydra's defaults list for `MainConfig`: an empty slot takes its group's default option; a slot
    filled in Python takes none (`null`), so the config given is the one that runs, and `group=option`
    still replaces it (see `clear_slot_first`). An `experiment` preset, if chosen, comes last."""
    choices = [{group: None if group in filled else option} for group, option in SLOTS.items()]
    return ["_self_", *choices, {"experiment": None}, {"override hydra/sweeper": "grid"}]


@dataclass
class MainConfig:
    """The whole experiment: one config in each slot (dataset, model, optim, scheduler, augment), plus trainer,
    tracker and seed.

    Leave a slot empty for its group's default, or fill it with a config of that group's kind, e.g.
    `MainConfig(model=LargeConf(hidden=64), optim=AdamConf(lr=0.01))`: what is filled in is what runs.
    """

    defaults: list[Any] = field(default_factory=lambda: slot_defaults(set()), init=False, repr=False)
    dataset: DatasetConfig = MISSING
    model: ModelConfig = MISSING
    optim: OptimConfig = MISSING
    scheduler: SchedulerConfig = MISSING
    augment: AugmentConfig = MISSING
    trainer: TrainerConf = field(default_factory=TrainerConf)
    tracker: TrackerConf = field(default_factory=TrackerConf)
    seed: Annotated[int, Seed, Doc("seeds the model's initial weights and the batch order")] = 0
    resume: Annotated[str | None, Doc("a run directory to continue from its last checkpoint")] = None
    # Name the job after zenexp (Hydra would name it after the module holding the main function); check the
    # whole job before Hydra builds anything (`${zenexp.guard:}`, resolved when Hydra configures its own
    # logging and again when it builds its first callback, zenexp.checks.guard.Guard); record each job's outcome and
    # the sweep's summary; give each run a directory of its own, and a resumed job the directory it continues,
    # where Hydra does not write its .hydra/ files again.
    hydra: Any = field(
        default_factory=lambda: {
            "job": {"name": "zenexp"},
            "hydra_logging": {
                "zenexp_guard": GUARD["verdict"],  # a key Python's logging ignores
                # Optuna's study database: alembic (>= 1.18) logs a line per plugin as it is imported.
                "loggers": {"alembic": {"level": "WARNING"}},
            },
            "callbacks": {
                "guard": dict(GUARD),
                "sweep": {"_target_": "zenexp.sweep.records.SweepRecorder"},
            },
            "run": {"dir": "${zenexp.run_dir:${resume},outputs/${now:%Y-%m-%d}/${now:%H-%M-%S}}"},
            "sweep": {"dir": "${zenexp.new_dir:multirun/${now:%Y-%m-%d}/${now:%H-%M-%S}}"},
            "output_subdir": "${zenexp.unless_resuming:${resume},.hydra}",
        },
        repr=False,
    )

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name in SLOTS:  # keep the defaults list in step with the slots, in __init__ and after
            clear_slot_first()
            filled = {slot for slot in SLOTS if getattr(self, slot, MISSING) is not MISSING}
            super().__setattr__("defaults", slot_defaults(filled))


def add_to_hydra_store() -> None:
    """Put every config stored with hydra-zen's `store` (zenexp's, and a user's own) where Hydra finds them."""
    store.add_to_hydra_store()  # adding the same entries again is a no-op
    clear_slot_first()


def clear_slot_first() -> None:
    """Give every stored option of a slot's group a defaults list that empties the slot before the option
    is merged. Choosing an option then replaces a config filled in Python; without this, Hydra merges the
    option into it, which fails for another class ("LargeConf is not a subclass of SmallConf").
    Idempotent; runs again whenever a slot is set, so options a user stored since are covered."""
    config_store = ConfigStore.instance()
    for group in SLOTS:
        clear = f"/zenexp_clear_{group}"
        for name in config_store.list(group) if group in config_store.repo else []:
            node = config_store.repo[group][name].node
            if not isinstance(node, DictConfig):
                continue
            with open_dict(node):
                defaults = list(node.get("defaults", ["_self_"]))
                if clear not in defaults:
                    node["defaults"] = [clear, *defaults]


# Run directories: a resumed run's own, else a new one made exclusively (cached: resolved once per config).
OmegaConf.register_new_resolver(
    "zenexp.run_dir", lambda resume, base: resume or rundir.new_run_dir(base), use_cache=True, replace=True
)
OmegaConf.register_new_resolver("zenexp.new_dir", rundir.new_run_dir, use_cache=True, replace=True)
OmegaConf.register_new_resolver(
    "zenexp.unless_resuming", lambda resume, value: None if resume else value, replace=True
)

for slot in SLOTS:
    store({slot: None}, name=f"zenexp_clear_{slot}", package="_global_")

# zenexp's own options say so (`provider`): run.json records where every other option came from.
ZENEXP = "zenexp"

model_store = store(group="model", provider=ZENEXP)
model_store(SmallConf(), name="small")
model_store(LargeConf(), name="large")
model_store(NetConf(), name="net")

dataset_store = store(group="dataset", provider=ZENEXP)
dataset_store(DigitsConf(), name="digits")
dataset_store(CIFAR10Conf(), name="cifar10")
dataset_store(MNISTConf(), name="mnist")
dataset_store(FakeDataConf(), name="fake")
dataset_store(ImageFolderConf(), name="image_folder")

optim_store = store(group="optim", provider=ZENEXP)
optim_store(SGDConf(), name="sgd")
optim_store(AdamConf(), name="adam")

scheduler_store = store(group="scheduler", provider=ZENEXP)
scheduler_store(NoSchedulerConf(), name="none")
scheduler_store(StepConf(), name="step")
scheduler_store(CosineConf(), name="cosine")

augment_store = store(group="augment", provider=ZENEXP)
augment_store(NoAugmentConf(), name="none")
augment_store(FlipCropConf(), name="flip_crop")

store(MainConfig(), name="zenexp")


# ---- experiment presets ---------------------------------------------------------------------------------


def preset(*, dataset: str, model: str, optim: str, values: dict[str, Any] | None = None) -> dict[str, Any]:
    """An `experiment` preset: the group options by name, and typed configs merged on top of them."""
    choices = [
        {f"override /{group}": option}
        for group, option in (("dataset", dataset), ("model", model), ("optim", optim))
    ]
    return {"defaults": ["_self_", *choices], **(values or {})}


LESSON = {"optim": SGDConf(lr=0.001, momentum=0.9), "trainer": TrainerConf(batch_size=4, epochs=2)}
experiment_store = store(group="experiment", package="_global_", provider=ZENEXP)
experiment_store(preset(dataset="cifar10", model="net", optim="sgd", values=LESSON), name="lesson")
experiment_store(preset(dataset="fake", model="net", optim="sgd", values=LESSON), name="lesson_fake")

# zenexp's sweepers (hydra_plugins.zenexp_plugins): Hydra's own, with a ledger that lets `zenexp resume`
# finish a sweep. `grid`, Hydra's basic sweeper so, is the default. `hydra/launcher=slurm`: Hydra's
# submitit_slurm, its preempted jobs requeued to continue from their checkpoints, a job's ranks (trainer.devices
# per node, on trainer.nodes) placed by Slurm as its tasks (needs zenexp[sweep]).
store(
    {"_target_": "hydra_plugins.zenexp_plugins.GridSweeper", "max_batch_size": None, "params": None},
    group="hydra/sweeper",
    name="grid",
)
store(
    {
        "defaults": ["submitit_slurm", "_self_"],
        "_target_": "hydra_plugins.zenexp_plugins.SlurmLauncher",
        # A job's ranks are its Slurm tasks (zenexp.parallel.distributed).
        "tasks_per_node": "${trainer.devices}",
        "nodes": "${trainer.nodes}",
    },
    group="hydra/launcher",
    name="slurm",
)


# ---- searches: hydra/sweeper=lr_model_search (needs zenexp[sweep]) -------------------------------------------
# Typed configs of Optuna's samplers and pruners, by name (Optuna is imported only when a search runs):
# hydra/sweeper/sampler=tpe|random|cmaes|grid, hydra/sweeper/pruner=none|median|hyperband.

SEARCH_STARTUP_TRIALS, SEARCH_TRIALS = 4, 12


@dataclass
class TPESamplerConf:
    """Optuna's TPE. It samples at random for its first `n_startup_trials`: Optuna's default is 10, more than
    lr_model_search's 12 trials leave room for, so zenexp's is 4 (then 8 are TPE's)."""

    _target_: str = "optuna.samplers.TPESampler"
    _partial_: bool = True
    seed: int | None = 0
    n_startup_trials: Annotated[int, Ge(0), Doc("random trials before TPE chooses")] = SEARCH_STARTUP_TRIALS
    multivariate: bool = False
    constant_liar: Annotated[bool, Doc("count running trials as bad while choosing (parallel trials)")] = True


@dataclass
class RandomSamplerConf:
    _target_: str = "optuna.samplers.RandomSampler"
    _partial_: bool = True
    seed: int | None = 0


@dataclass
class CmaEsSamplerConf:
    """CMA-ES: numbers only (intervals and ranges), no choices."""

    _target_: str = "optuna.samplers.CmaEsSampler"
    _partial_: bool = True
    seed: int | None = 0
    n_startup_trials: Annotated[int, Ge(0)] = 1


@dataclass
class GridSamplerConf:
    """Every combination of the choices and ranges (no intervals), in an order of its seed."""

    _target_: str = "optuna.samplers.GridSampler"
    _partial_: bool = True
    seed: int | None = 0


@dataclass
class NoPrunerConf:
    _target_: str = "optuna.pruners.NopPruner"


@dataclass
class MedianPrunerConf:
    """Stop a trial whose validation accuracy at an epoch is below the median of earlier trials' there."""

    _target_: str = "optuna.pruners.MedianPruner"
    n_startup_trials: Annotated[int, Ge(0), Doc("trials that are never pruned, to learn the median")] = 5
    # Epochs count from 1: 2 keeps every trial's first epoch from being pruned (0 and 1 do not).
    n_warmup_steps: Annotated[int, Ge(0), Doc("a trial is pruned at no epoch below this")] = 0
    interval_steps: Annotated[int, Ge(1)] = 1
    n_min_trials: Annotated[int, Ge(1)] = 1


@dataclass
class HyperbandPrunerConf:
    """Hyperband: successive halving in brackets, from `min_resource` to `max_resource` epochs."""

    _target_: str = "optuna.pruners.HyperbandPruner"
    min_resource: Annotated[int, Ge(1)] = 1
    max_resource: Any = "${trainer.epochs}"  # epochs (Optuna's "auto" is the first trial's)
    reduction_factor: Annotated[int, Ge(2)] = 3


@dataclass
class SearchConf:
    """An Optuna search (zenexp's own sweeper): `params` maps override keys to what to sample, in Hydra's
    override grammar (`choice(small, large)`, `range(1, 5)`, `interval(0.1, 0.5)`, `tag(log, interval(...))`);
    each trial is a job whose folder is its trial number, and its value is `float(RunResult)`, the
    validation accuracy of the model kept."""

    defaults: list[Any] = field(default_factory=lambda: [{"sampler": "tpe"}, {"pruner": "none"}, "_self_"])
    _target_: str = "hydra_plugins.zenexp_plugins.OptunaSearch"
    sampler: Any = MISSING
    pruner: Any = MISSING
    direction: str = "maximize"  # the only one: a trial's value is its validation accuracy
    n_trials: int = SEARCH_TRIALS
    n_jobs: int = 1  # trials running at once (with a launcher that runs jobs in parallel)
    max_failure_rate: float = 0.25
    storage: str = "auto"  # auto (SQLite here, the journal file on Slurm), sqlite or journal
    study_name: str = "zenexp"
    params: dict[str, str] = field(default_factory=dict)


sampler_store = store(group="hydra/sweeper/sampler", provider=ZENEXP)
sampler_store(TPESamplerConf(), name="tpe")
sampler_store(RandomSamplerConf(), name="random")
sampler_store(CmaEsSamplerConf(), name="cmaes")
sampler_store(GridSamplerConf(), name="grid")
pruner_store = store(group="hydra/sweeper/pruner", provider=ZENEXP)
pruner_store(NoPrunerConf(), name="none")
pruner_store(MedianPrunerConf(), name="median")
pruner_store(HyperbandPrunerConf(), name="hyperband")
# The ready search: TPE over the learning rate (log scale) and the model, 12 trials, maximising validation
# accuracy, its study in the sweep directory.
store(
    SearchConf(params={"optim.lr": "tag(log, interval(0.0001, 0.3))", "model": "choice(small, large)"}),
    group="hydra/sweeper",
    name="lr_model_search",
)
