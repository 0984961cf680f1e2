"""One test per shim of `zenexp.compat`: each fails when a Hydra or OmegaConf release changes the private
internal the shim relies on."""

from __future__ import annotations

import importlib

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.sweeper import Sweeper
from omegaconf import DictConfig, ListConfig, OmegaConf

from zenexp import compat
from zenexp.configs.schema import compose_config


def test_hydra_argument_parser_reads_hydra_s_own_command_line() -> None:
    parsed = compat.hydra_argument_parser().parse_args(["-m", "--cfg", "job", "optim.lr=0.1"])
    assert parsed.multirun and parsed.cfg == "job" and parsed.overrides == ["optim.lr=0.1"]
    assert not (parsed.info or parsed.hydra_help or parsed.shell_completion)


def test_apply_overrides_sets_adds_and_deletes_as_composing_does() -> None:
    cfg = OmegaConf.create({"a": 1, "gone": 2, "nested": {"b": "x"}})
    parsed = OverridesParser.create().parse_overrides(["a=5", "+c=3", "~gone", "nested.b=y"])
    compat.apply_overrides(parsed, cfg)
    assert OmegaConf.to_container(cfg) == {"a": 5, "c": 3, "nested": {"b": "y"}}


def test_sweep_jobs_are_the_basic_sweeper_s_product_and_it_is_a_sweeper() -> None:
    parsed = OverridesParser.create().parse_overrides(["a=1,2", "b=x,y", "c=0"])
    assert compat.sweep_jobs(parsed) == [
        ["a=1", "b=x", "c=0"],
        ["a=1", "b=y", "c=0"],
        ["a=2", "b=x", "c=0"],
        ["a=2", "b=y", "c=0"],
    ]
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    grid_sweeper = importlib.import_module("hydra_plugins.zenexp_plugins").GridSweeper  # extends it
    assert issubclass(grid_sweeper, BasicSweeper) and issubclass(BasicSweeper, Sweeper)


def test_child_nodes_are_read_as_stored() -> None:
    cfg = OmegaConf.create({"x": 1, "link": "${x}", "empty": None, "todo": "???", "items": [{"a": 1}]})
    link, empty, todo = (compat.child_node(cfg, key) for key in ("link", "empty", "todo"))
    assert link is not None and compat.is_interpolation(link) and not compat.is_interpolation(cfg)
    assert empty is not None and compat.is_none(empty) and not compat.is_none(cfg)
    assert todo is not None and compat.is_missing(todo) and not compat.is_missing(cfg)
    items = compat.child_node(cfg, "items")
    assert isinstance(items, ListConfig) and isinstance(compat.child_node(items, 0), DictConfig)


def test_job_root_is_the_config_hydra_config_was_set_from() -> None:
    cfg = compose_config([], with_hydra=True)
    before = HydraConfig.instance().cfg
    HydraConfig.instance().set_config(cfg)
    try:
        assert compat.job_root(HydraConfig.get()) is cfg
    finally:
        HydraConfig.instance().cfg = before


def test_failure_of_a_job_is_what_it_raised() -> None:
    error = ValueError("no")
    failed = JobReturn(status=JobStatus.FAILED, _return_value=error)
    assert compat.failure_of(failed) is error
