"""Every config, typed, and the store that registers them with Hydra. No YAML anywhere: `from zenexp.configs
import LargeConf, SGDConf, ...` gives every public config; each module holds one kind (fields, models,
datasets, training, settings, main, presets, search), `store.register()` puts them in Hydra's ConfigStore,
`schema` reads what the store holds, and `usercode` finds a user's own configs.

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

from zenexp.configs.datasets import (
    CIFAR10Conf,
    DigitsConf,
    FakeDataConf,
    ImageFolderConf,
    MNISTConf,
    TorchvisionConf,
)
from zenexp.configs.fields import (
    IMAGE_SHAPE,
    NUM_CLASSES,
    AugmentConfig,
    DatasetConfig,
    Fixed,
    ModelConfig,
    OptimConfig,
    SchedulerConfig,
    ThreadCount,
    VisionDatasetConfig,
    Words,
)
from zenexp.configs.main import GUARD, SLOTS, ZENEXP, MainConfig, add_to_hydra_store, clear_slot_first
from zenexp.configs.models import LargeConf, NetConf, SmallConf
from zenexp.configs.presets import preset
from zenexp.configs.search import (
    CmaEsSamplerConf,
    GridSamplerConf,
    HyperbandPrunerConf,
    MedianPrunerConf,
    NoPrunerConf,
    RandomSamplerConf,
    SearchConf,
    TPESamplerConf,
)
from zenexp.configs.settings import Precision, TrackerConf, TrackerMode, TrainerConf
from zenexp.configs.training import (
    AdamConf,
    CosineConf,
    FlipCropConf,
    HorizontalFlipConf,
    NoAugmentConf,
    NoSchedulerConf,
    RandomCropConf,
    SGDConf,
    StepConf,
)

__all__ = [
    "IMAGE_SHAPE",
    "NUM_CLASSES",
    "Fixed",
    "Words",
    "ThreadCount",
    "ModelConfig",
    "DatasetConfig",
    "OptimConfig",
    "SchedulerConfig",
    "AugmentConfig",
    "VisionDatasetConfig",
    "SmallConf",
    "LargeConf",
    "NetConf",
    "DigitsConf",
    "CIFAR10Conf",
    "MNISTConf",
    "FakeDataConf",
    "TorchvisionConf",
    "ImageFolderConf",
    "SGDConf",
    "AdamConf",
    "NoSchedulerConf",
    "StepConf",
    "CosineConf",
    "NoAugmentConf",
    "RandomCropConf",
    "HorizontalFlipConf",
    "FlipCropConf",
    "Precision",
    "TrainerConf",
    "TrackerMode",
    "TrackerConf",
    "GUARD",
    "SLOTS",
    "ZENEXP",
    "MainConfig",
    "add_to_hydra_store",
    "clear_slot_first",
    "preset",
    "TPESamplerConf",
    "RandomSamplerConf",
    "CmaEsSamplerConf",
    "GridSamplerConf",
    "NoPrunerConf",
    "MedianPrunerConf",
    "HyperbandPrunerConf",
    "SearchConf",
]
