"""`MainConfig`, the whole experiment: a config in each slot, trainer, tracker, seed, and Hydra's settings;
and the defaults that let a slot filled in Python be replaced by `group=option`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from hydra.core.config_store import ConfigStore
from hydra_zen import store
from omegaconf import MISSING, DictConfig, open_dict
from typing_extensions import Doc

from zenexp.configs.fields import (
    AugmentConfig,
    DatasetConfig,
    ModelConfig,
    OptimConfig,
    SchedulerConfig,
    Seed,
)
from zenexp.configs.settings import TrackerConf, TrainerConf

# ---- top level ----
# zenexp's first Hydra callback; building it resolves the guard that checks the whole job (zenexp.checks).
GUARD = {"_target_": "zenexp.checks.guard.Guard", "verdict": "${zenexp.guard:}"}
# zenexp's own options say so (their store `provider`): run.json records where every other option came from.
ZENEXP = "zenexp"
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
