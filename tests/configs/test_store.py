"""`register()`: the one place that puts zenexp's configs, resolvers and plugin options where Hydra finds them."""

from __future__ import annotations

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from zenexp.configs.schema import options
from zenexp.configs.store import register

RESOLVERS = ("zenexp.guard", "zenexp.size", "zenexp.class_count", "zenexp.run_dir", "zenexp.new_dir")


def test_register_stores_every_option_and_resolver_once() -> None:
    before = {group: options(group) for group in ("model", "dataset", "hydra/sweeper", "hydra/launcher")}
    assert before["model"] == ["large", "net", "small"] and "lr_model_search" in before["hydra/sweeper"]
    assert "slurm" in before["hydra/launcher"]
    assert all(OmegaConf.has_resolver(name) for name in RESOLVERS)
    entries = len(str(ConfigStore.instance().repo))
    register()  # `import zenexp` registered already: again is nothing
    assert {group: options(group) for group in before} == before
    assert len(str(ConfigStore.instance().repo)) == entries
