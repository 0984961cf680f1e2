"""zenexp: run and record PyTorch experiments with typed, YAML-free configs.

from hydra_zen import launch
import zenexp
job = launch(zenexp.MainConfig, zenexp.task, overrides=["model=large"], version_base="1.3")
job.return_value.metrics["test_accuracy"]
"""

from zenexp.configs import MainConfig, add_to_hydra_store
from zenexp.configs.store import register
from zenexp.errors import UserError
from zenexp.run.task import evaluate_run, rerun, resume, task
from zenexp.run.train import RunResult

__all__ = [
    "MainConfig",
    "RunResult",
    "UserError",
    "add_to_hydra_store",
    "evaluate_run",
    "rerun",
    "resume",
    "task",
]

register()
