"""zenexp: run and record PyTorch experiments with typed, YAML-free configs.

from hydra_zen import launch
import zenexp
job = launch(zenexp.MainConfig, zenexp.task, overrides=["model=large"], version_base="1.3")
job.return_value.metrics["test_accuracy"]
"""

from hydra_zen import store

from zenexp.configs import MainConfig, clear_slot_first
from zenexp.errors import UserError
from zenexp.runs import rerun, resume, task
from zenexp.train import RunResult

__all__ = ["MainConfig", "RunResult", "UserError", "rerun", "resume", "task"]

# Hydra looks configs up in its own ConfigStore; adding the same entries again is a no-op.
store.add_to_hydra_store()
clear_slot_first()
