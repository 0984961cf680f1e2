"""zenexp: run and record PyTorch experiments with typed, YAML-free configs.

from hydra_zen import launch
import zenexp
job = launch(zenexp.MainConfig, zenexp.task, overrides=["model=large"], version_base="1.3")
job.return_value.metrics["test_accuracy"]
"""

from hydra_zen import store, zen

from zenexp.configs import MainConfig
from zenexp.errors import UserError
from zenexp.train import RunResult, seed_everything, train
from zenexp.validation import validate_job

__all__ = ["MainConfig", "RunResult", "UserError", "task"]

#: The zen-wrapped task: validates the composed config, seeds, builds everything, then trains.
task = zen(train, pre_call=[validate_job, seed_everything], resolve_pre_call=False)

# Hydra looks configs up in its own ConfigStore; adding the same entries again is a no-op.
store.add_to_hydra_store()
