"""The checks where a job starts: `launch()` reaches them through the resolver `${zenexp.guard:}`, which Hydra
resolves when it configures its own logging and when it builds `Guard`, its first callback (before any
other callback, the launcher, the sweeper or a run directory); and the task's first step checks the job
again with its own `hydra` config."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import cast

from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig
from omegaconf.errors import InterpolationResolutionError

from zenexp import compat
from zenexp.checks.fields import check_config
from zenexp.checks.hydra_settings import check_hydra
from zenexp.checks.overrides import check_overrides
from zenexp.checks.points import task_part
from zenexp.configs import SLOTS, usercode
from zenexp.configs.schema import plain
from zenexp.errors import UserError, raise_problems
from zenexp.parallel import distributed
from zenexp.run import rundir
from zenexp.run.provenance import job_overrides
from zenexp.run.resume import ResumePlan, read_plan


def validate_job(cfg: DictConfig) -> ResumePlan | None:
    """The task's first step, for the CLI and `launch()` alike: every check again, with the job's own `hydra`
    config; the plan of the run it resumes, as the checks read it. A refused job leaves nothing: what Hydra
    wrote for it is removed again."""
    hydra = HydraConfig.get()
    # A run (not a sweep's job) was checked whole by the guard, on this very config, before Hydra built
    # anything: its result stands. A sweep's root left the swept values out, so each of its jobs is checked here.
    # (`hydra.job.env_set` is applied around the task only: an `${oc.env:...}` value may differ, so check again.)
    checked = hydra.mode == RunMode.RUN and not hydra.job.env_set and passed(compat.job_root(hydra))
    overrides = job_overrides()
    problems = [] if checked else check_config(cfg, overrides)
    problems = problems or check_slot_choices(overrides)
    resume = cfg.get("resume")
    if resume and Path(hydra.runtime.output_dir).resolve() != Path(resume).resolve():
        problems.append(
            f"resume={resume}: a job continues the run of its own folder, {hydra.runtime.output_dir}"
        )
    if not checked:
        problems = problems or check_hydra(cast(DictConfig, hydra), before_run=False)
    if problems:
        if not cfg.get("resume"):  # a resumed run's directory is never touched
            rundir.discard_refused(
                Path(hydra.runtime.output_dir), hydra.output_subdir, f"{hydra.job.name}.log"
            )
        raise_problems(problems)
    if not resume:
        return None
    try:
        return read_plan(Path(resume))  # as the checks just read it, unless the files changed since
    except UserError as error:
        raise UserError(f"resume={resume}: {error}") from error


class RefusedJob(InterpolationResolutionError, UserError):
    """A `UserError` raised by the guard's resolver. Being an `InterpolationResolutionError` too, OmegaConf
    and Hydra pass it on as it is, so `launch()` raises zenexp's one line, not a wrapped one."""

    def __str__(self) -> str:
        # OmegaConf raises it again with "full_key: ..." lines appended: show zenexp's own message only.
        return super().__str__().split("\n    full_key:")[0]


#: The config the guard last passed: Hydra resolves the guard twice per job (its logging, then the
#: callbacks), on the same config object, with nothing in between; checking it once is enough.
_passed: weakref.ref[DictConfig] | None = None


def passed(root: DictConfig | None) -> bool:
    """Whether the guard passed this very config (the whole config of a job, `compat.job_root`)."""
    return root is not None and _passed is not None and _passed() is root


def check_guarded(root: DictConfig) -> str:
    """The resolver `${zenexp.guard:}` (see `Guard`): refuse the job before Hydra builds anything else."""
    global _passed
    if _passed is not None and _passed() is root:
        return "checked"
    if (nested := distributed.started_in_a_rank() or usercode.started_while_importing()) is not None:
        raise RefusedJob(nested)
    overrides = plain(root.hydra.overrides.task)
    if root.hydra.mode == RunMode.MULTIRUN:
        # A sweep's root leaves the swept values out (`model=net` is checked against the default dataset, not
        # the swept ones): here only what no swept value can change; each job is checked whole when it starts
        # (`validate_job`), before anything of its task is built.
        problems = check_hydra(root.hydra) + check_overrides(overrides)
    else:
        problems = check_hydra(root.hydra) + check_config(task_part(root), overrides)
    try:
        raise_problems(problems)
    except UserError as error:
        raise RefusedJob(str(error)) from None
    _passed = weakref.ref(root)
    return "checked"


class Guard(Callback):
    """zenexp's first Hydra callback. Building it resolves `${zenexp.guard:}`, which checks the whole job:
    a `launch()` whose overrides name a target nobody registered, or that would write into another run's
    directory, stops here, before Hydra builds another callback, the launcher or the sweeper, or makes a
    run directory. (Hydra resolves the same guard earlier too, in `hydra.hydra_logging`.)"""

    def __init__(self, verdict: str) -> None:
        self.verdict = verdict


def check_slot_choices(overrides: Sequence[str]) -> list[str]:
    """A slot filled in Python is only replaced by an explicit `slot=option`, never by a preset's choice."""
    hydra = HydraConfig.get()
    primary = ConfigStore.instance().load(f"{hydra.job.config_name}.yaml").node
    filled = {
        group
        for entry in primary.get("defaults", [])
        if isinstance(entry, DictConfig)
        for group, option in entry.items()
        if group in SLOTS and option is None
    }
    chosen = {str(override).partition("=")[0].lstrip("+") for override in overrides}
    return [
        f"{slot}: the config given in Python would be replaced by experiment={hydra.runtime.choices.get('experiment')}'s "
        f"{slot}={hydra.runtime.choices[slot]}; leave MainConfig.{slot} empty, or choose {slot}=<option> as an override"
        for slot in sorted(filled)
        if hydra.runtime.choices.get(slot) is not None and slot not in chosen
    ]
