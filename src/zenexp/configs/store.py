"""`register()`: zenexp's configs in Hydra's ConfigStore (through the hydra-zen store), its resolvers, and its
sweepers and launcher as Hydra plugin options. Importing a config module registers nothing; `import zenexp`
registers once."""

from __future__ import annotations

import functools
import math

from hydra_zen import store
from omegaconf import OmegaConf

from zenexp.checks import guard
from zenexp.configs.datasets import CIFAR10Conf, DigitsConf, FakeDataConf, ImageFolderConf, MNISTConf
from zenexp.configs.main import SLOTS, ZENEXP, MainConfig, add_to_hydra_store
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
from zenexp.configs.settings import TrainerConf
from zenexp.configs.training import (
    AdamConf,
    CosineConf,
    FlipCropConf,
    NoAugmentConf,
    NoSchedulerConf,
    SGDConf,
    StepConf,
)
from zenexp.data import folders
from zenexp.run import rundir


@functools.cache
def register() -> None:
    """Store every zenexp option and register its resolvers (once per process)."""
    # The guard that checks a whole job before Hydra builds anything (zenexp.checks.guard).
    OmegaConf.register_new_resolver("zenexp.guard", lambda _root_: guard.check_guarded(_root_), replace=True)
    # `${zenexp.size:${dataset.image_shape}}`: the number of values in one image (the first linear layer's input).
    OmegaConf.register_new_resolver("zenexp.size", lambda shape: math.prod(shape), replace=True)
    # `${zenexp.class_count:${.root}}`: the class folders of an image folder (image_folder's num_classes).
    OmegaConf.register_new_resolver("zenexp.class_count", folders.class_count, replace=True)
    # Run directories: a resumed run's own, else a new one made exclusively (cached: resolved once per config).
    OmegaConf.register_new_resolver(
        "zenexp.run_dir",
        lambda resume, base: resume or rundir.new_run_dir(base),
        use_cache=True,
        replace=True,
    )
    OmegaConf.register_new_resolver("zenexp.new_dir", rundir.new_run_dir, use_cache=True, replace=True)
    OmegaConf.register_new_resolver(
        "zenexp.unless_resuming", lambda resume, value: None if resume else value, replace=True
    )
    for slot in SLOTS:
        store({slot: None}, name=f"zenexp_clear_{slot}", package="_global_")

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
    add_to_hydra_store()
