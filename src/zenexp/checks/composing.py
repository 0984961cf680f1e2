"""Composing (Hydra and OmegaConf) explained: bad types, unknown keys and unknown options, each with what
exists."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import Any

from hydra.errors import HydraException, MissingConfigException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from zenexp.checks.overrides import parser
from zenexp.configs.schema import HYDRA_KEYS, compose_config, join, options, override_key, type_name

# Hydra's groups a zenexp extra installs more options into.
EXTRAS = {"hydra/launcher": "sweep", "hydra/sweeper": "sweep"}


def explain_compose_error(overrides: Sequence[str]) -> list[str]:
    """Compose with each override on its own (after the group choices) to say which ones fail and why."""
    lines = [str(o.input_line) for o in parser().parse_overrides(list(overrides))]
    choices = [line for line in lines if options(override_key(line)) or override_key(line) in EXTRAS]
    problems = [_compose_problem(choices[:i], choice) for i, choice in enumerate(choices)]
    if not any(problems):
        problems = [_compose_problem(choices, line) for line in lines if line not in choices]
    return [problem for problem in problems if problem]


def _compose_problem(base: list[str], override: str) -> str | None:
    try:
        compose_config([*base, override], with_hydra=True)
    except MissingConfigException:
        group, _, choice = override.lstrip("+").partition("=")
        known = options(group)
        extra = f" (more with pip install 'zenexp[{EXTRAS[group]}]')" if group in EXTRAS else ""
        if not known and group in EXTRAS:
            return f"{override}: there is no {group} '{choice}'; Hydra's launchers and sweepers come with pip install 'zenexp[{EXTRAS[group]}]'"
        if not known:
            return f"{override}: there is no {group} '{choice}'; see zenexp --help"
        return f"{override}: there is no {group} '{choice}'; choose one of {', '.join(known)}{extra}"
    except (HydraException, OmegaConfBaseException) as error:
        cause = error.__cause__
        if isinstance(cause, (ConfigAttributeError, ConfigKeyError)):
            return f"{override}: {_unknown_key(base, override_key(override))}"
        if isinstance(cause, OmegaConfBaseException):
            return f"{override}: {first_line(cause)}"
        return f"{override}: {str(error).splitlines()[0]}"
    return None


def missing(cfg: DictConfig, path: str) -> str:
    if known := options(path):  # a slot left empty (~model)
        return f"{path} is missing (???): choose one of {', '.join(known)}, e.g. {path}={known[0]}"
    return f"{path} is missing (???): give it a value, e.g. {path}=<{type_name(cfg, path)}>"


def _unknown_key(base: list[str], key: str) -> str:
    parent_path, _, name = key.rpartition(".")
    parent = OmegaConf.select(compose_config(base), parent_path) if parent_path else compose_config(base)
    return no_such_field(parent_path, name, parent.keys() if isinstance(parent, DictConfig) else [])


def no_such_field(parent_path: str, name: str, keys: Iterable[Any]) -> str:
    """`optim has no field 'lrr'; did you mean optim.lr? (fields: lr, momentum, weight_decay)`"""
    fields = sorted(str(k) for k in keys if not str(k).startswith("_") and k not in HYDRA_KEYS)
    close = difflib.get_close_matches(name, fields, n=1)
    hint = f"; did you mean {join(parent_path, close[0])}?" if close else ""
    return f"{parent_path or 'the config'} has no field '{name}'{hint} (fields: {', '.join(fields)})"


def first_line(error: OmegaConfBaseException) -> str:
    """OmegaConf's message without the full_key/object_type lines it appends."""
    return str(error.msg or error).splitlines()[0]
