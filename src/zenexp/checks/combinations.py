"""Values that are each fine but cannot work together: a model and images too small for it, data files
missing, a split left empty, devices this machine lacks, fewer images per batch than ranks, a tracker that
cannot record."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from zenexp.configs import CIFAR10Conf, DigitsConf, ImageFolderConf, MNISTConf, NetConf
from zenexp.data import datasets, folders
from zenexp.errors import UserError
from zenexp.parallel import distributed, machine
from zenexp.parallel.machine import resolve_device
from zenexp.run.models import Net
from zenexp.tracking.settings import tracker_problems

# The splits each dataset holds out by a fraction of its images.
HELD_OUT = {
    DigitsConf: ("digits", ("test", "val")),
    CIFAR10Conf: ("cifar10", ("val",)),
    MNISTConf: ("mnist", ("val",)),
}


def check_combinations(cfg: DictConfig) -> list[str]:
    problems = []
    model_type = OmegaConf.get_type(cfg.model)
    dataset_type = OmegaConf.get_type(cfg.dataset)
    folder = isinstance(dataset_type, type) and issubclass(dataset_type, ImageFolderConf)
    if isinstance(model_type, type) and issubclass(model_type, NetConf):
        shape = list(cfg.model.image_shape)
        if min(shape[1:]) < Net.MIN_IMAGE_SIZE:
            size = f"{Net.MIN_IMAGE_SIZE}x{Net.MIN_IMAGE_SIZE}"
            instead = (
                f"a dataset.image_shape of {size} or more" if folder else "dataset=cifar10, mnist or fake"
            )
            problems.append(
                f"model.image_shape={shape} (from the dataset): model=net needs images of at least "
                f"{size} pixels; choose {instead}, or model=small or large"
            )
    if folder:
        problems += folders.folder_problems(
            cfg.dataset.root, list(cfg.dataset.image_shape), cfg.dataset.val_fraction, cfg.dataset.num_classes
        )
    for conf, (option, held_out) in HELD_OUT.items():
        if isinstance(dataset_type, type) and issubclass(dataset_type, conf):
            fractions = {name: cfg.dataset[f"{name}_fraction"] for name in held_out}
            problems += datasets.split_problems(option, fractions)
    if "root" in cfg.dataset and not cfg.dataset.get("download", False):
        option = getattr(dataset_type, "__name__", "").removesuffix("Conf").lower()
        problems += datasets.missing_files(option, cfg.dataset.root)
    try:
        device = resolve_device(cfg.trainer.device)
    except UserError as error:
        problems.append(str(error))
    else:
        problems += distributed.device_problems(cfg.trainer.devices, device)
        problems += machine.rank_problems(cfg.trainer.devices, device)
    ranks = cfg.trainer.devices * cfg.trainer.nodes
    if cfg.trainer.batch_size < ranks:
        problems.append(
            f"trainer.batch_size={cfg.trainer.batch_size}: less than one image per rank "
            f"({ranks} = trainer.devices x trainer.nodes); the batch size is the global one, over every rank"
        )
    return problems + tracker_problems(cfg.tracker)
