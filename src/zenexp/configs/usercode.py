"""A user's own code: the script or module that registered an option zenexp does not ship (run.json's
`registered_by`, named in one line when a later rerun, resume or eval cannot find the option), and that script
imported by a sweep's job that runs in another process, where the script's own classes are to be found.

zenexp never imports a module or runs a script named in a run directory: it only names them."""

from __future__ import annotations

import multiprocessing.spawn
import os
import reprlib
import shlex
import site
import sys
import sysconfig
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from zenexp.configs.schema import plain, targets
from zenexp.errors import UserError

MAIN = "__main__"  # what is recorded for a script that has no file (an interactive session)
RUN_MODULE = "-m "  # recorded before a module or package that `python -m` ran: `-m mypkg`


# ---- where an option came from -----------------------------------------------------------------------------


def origin(node: DictConfig) -> str:
    """Where the stored option `node` came from: the module of the user's that defines it (`my_models`), else
    the script this process runs (its absolute path), which defined or imported whatever stored it.

    Neither hydra-zen nor Hydra can say which module called `store`: hydra-zen's global store defers its
    entries and hands them to Hydra's ConfigStore later, from whoever calls `add_to_hydra_store()` (zenexp's
    main, here), so the caller is gone, and `provider` is only what the caller chose to pass. What the option
    itself names is left: its class's module (`@hydrated_dataclass` and plain dataclasses: the module that
    declares it) and its targets' modules (`builds(Tiny)` makes its class in `types`; `Tiny`'s own module is
    where it is defined). Those count only when they are the user's own: not the standard library, not an
    installed package (`builds(torch.nn.Linear)` says nothing of who stored it), not zenexp. Otherwise, or for
    a preset (a plain dict names no code), the script: it ran the `store` call or imported what did, so a
    rerun through it finds the option again."""
    for module in _named_modules(node):
        if module == MAIN:
            return _the_script()
        if not _installed(module):
            return module
    return _the_script()


def _the_script() -> str:
    """`main_script()`, or `__main__` where it is no script of the user's (a notebook's kernel)."""
    script = main_script()
    return script if script.startswith("/") or not _installed(script) else MAIN


def _named_modules(node: DictConfig) -> Iterator[str]:
    schema = OmegaConf.get_type(node)
    if isinstance(schema, type):
        yield schema.__module__
    for _, target in targets(plain(node)):
        module = _module_of(target)
        if module is not None:
            yield module


def _module_of(target: str) -> str | None:
    """The imported module that `target` (`pkg.module.Class.method`) names a member of."""
    parts = target.split(".")
    return next(
        (".".join(parts[:n]) for n in range(len(parts) - 1, 0, -1) if ".".join(parts[:n]) in sys.modules),
        None,
    )


def _installed(module: str) -> bool:
    """Whether `module` is zenexp's, or, as imported here, part of Python's installation: the standard library,
    an installed package, or built in. A module of the user's own is imported from a file elsewhere."""
    if module.partition(".")[0] == "zenexp":
        return True
    loaded = sys.modules.get(module)
    if loaded is None:
        return False  # not imported in this process: nothing says it is installed
    file = getattr(loaded, "__file__", None)
    if not file:
        return True  # built into Python (or a namespace package, which names no file to run)
    path = Path(file).resolve()
    return any(path.is_relative_to(folder) for folder in _installation())


def _installation() -> set[Path]:
    """The folders of the standard library and of installed packages."""
    paths = {sysconfig.get_path(name) for name in ("stdlib", "platstdlib", "purelib", "platlib")}
    paths |= {*site.getsitepackages(), site.getusersitepackages()}
    return {Path(path).resolve() for path in paths if path}


def main_script() -> str:
    """The script that started this job (for a sweep's job, wherever a launcher runs it, the sweep's), as
    `this_script` names it."""
    return _sweeps_script or this_script()


def this_script() -> str:
    """This process's `__main__`: its script's absolute path, `-m NAME` for the module or package `python -m`
    ran, or `__main__` where it has no file (an interactive session)."""
    main = sys.modules[MAIN]
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name:
        return f"{RUN_MODULE}{str(spec.name).removesuffix('.__main__')}"
    file = getattr(main, "__file__", None)
    return os.path.abspath(file) if file else MAIN


def is_zenexp_itself(name: str) -> bool:
    """Whether `main_script()` is zenexp's own command (`python -m zenexp`, the `zenexp` console script)."""
    name = name.removeprefix(RUN_MODULE)
    return name.partition(".")[0] == "zenexp" or Path(name).name == "zenexp"


# ---- saying where to run a recorded run --------------------------------------------------------------------


def registration(run_file: Path, choice: str, where: Any) -> str:
    """`registered_by[choice]` as a run directory holds it: a module's name or a script's path, checked (a run
    directory may come from anyone; zenexp only ever names what it holds, never imports or runs it)."""
    script = isinstance(where, str) and where.startswith("/") and where.isprintable()
    module = isinstance(where, str) and _dotted(where.removeprefix(RUN_MODULE))
    if not (script or module) or not (choice.isprintable() and "=" in choice):
        raise UserError(
            f"{run_file}: registered_by holds {reprlib.repr(choice)}: {reprlib.repr(where)}, not an option "
            f"(group=option) and the module or script that registered it; the file is damaged"
        )
    return str(where)


def not_registered(run_dir: Path, choice: str, where: str, command: str, started: Any) -> str:
    """Why a run's option is not in the store now, and what to run instead: `where` registered it (checked by
    `registration`); `started` is the run's recorded command line (`sys.argv`), as its run.json holds it."""
    shown_run = shlex.quote(str(run_dir))
    if where.startswith(RUN_MODULE):
        return (
            f"{run_dir} used {choice}, which python {where} registers; run it through that: "
            f"python {where} {command} {shown_run}"
        )
    if where.startswith("/"):
        script = _shown(where)
        return (
            f"{run_dir} used {choice}, which the script {script} registers; run it through that script: "
            f"python {script} {command} {shown_run}"
        )
    if where != MAIN and where.partition(".")[0] not in sys.stdlib_module_names:
        return (
            f"{run_dir} used {choice}, which module {where} registers; run it through a script that imports "
            f"{where} and calls zenexp.cli.main() (python SCRIPT {command} {shown_run}), or import {where} "
            f"before calling zenexp from Python"
        )
    # `__main__`: a session with no file, or a script as an older zenexp recorded it; a standard module
    # (`types`, `builtins`): where an older zenexp saw `builds()` or a dict make the config, not who stored it.
    started_script = _started_script(started)
    if started_script is None:
        return (
            f"{run_dir} used {choice}, which a script or session of yours registered (run.json names no file); "
            f"store it again and call zenexp from there"
        )
    return (
        f"{run_dir} used {choice}, which the script it was started with registers ({started_script}, as "
        f"run.json's command says); run it through that script: python {started_script} {command} {shown_run}"
    )


def _dotted(name: str) -> bool:
    return bool(name) and all(part.isidentifier() for part in name.split("."))


def _started_script(started: Any) -> str | None:
    """The script a run's recorded command line (`sys.argv`) ran, if it was a user's script."""
    if not isinstance(started, list) or not started or not isinstance(started[0], str):
        return None
    script = started[0]
    if not script.endswith(".py") or not script.isprintable() or is_zenexp_itself(str(Path(script).parent)):
        return None
    return _shown(script) if script.startswith("/") else shlex.quote(script)  # relative: as it was typed


def _shown(path: str) -> str:
    """A script's path as the user would type it here: relative to the working directory when inside it."""
    absolute = Path(os.path.abspath(path))
    shown = absolute.relative_to(Path.cwd()) if absolute.is_relative_to(Path.cwd()) else absolute
    return shlex.quote(str(shown))


# ---- the script in a job elsewhere -------------------------------------------------------------------------

# What a job takes of multiprocessing's preparation data: where to find and how to import `__main__`, and the
# command line it saw. Not `dir`: a launcher's worker may run other jobs, and keeps its own working directory.
PREPARATION = ("sys_path", "sys_argv", "orig_dir", "init_main_from_name", "init_main_from_path")
NOT_GUARDED = (
    "a sweep's job imports the script that started the sweep (as multiprocessing does), and the script ran its "
    "command line again: put the script's main() or launch() under if __name__ == '__main__':"
)
_sweeps_script: str | None = None  # in a sweep's job: the script that started the sweep (`ScriptFirst`)
_importing = False  # while a job imports that script


def script_first(task: Callable[[DictConfig], Any]) -> Callable[[DictConfig], Any]:
    """`task` as a sweep's launcher is to run it: `ScriptFirst`, where this process runs a script of the
    user's (not zenexp's own command, not an interactive session)."""
    script = this_script()
    if script == MAIN or is_zenexp_itself(script):
        return task
    data = multiprocessing.spawn.get_preparation_data("zenexp-job")
    return ScriptFirst(task, script, {key: data[key] for key in PREPARATION if key in data})


@dataclass(frozen=True)
class ScriptFirst:
    """A sweep's task function that knows the script that started the sweep, wherever a launcher runs the job
    (a joblib worker, a submitit job, a Slurm node): run.json names it, and a job whose config builds something
    the script defines (`__main__.Wide`) imports it first, as multiprocessing's spawn does. The launcher
    pickles it with the job; in the process that started the sweep (the basic launcher), it changes nothing."""

    task: Callable[[DictConfig], Any]
    script: str
    preparation: dict[str, Any]

    def __call__(self, cfg: DictConfig) -> Any:
        global _sweeps_script
        if names_the_script(cfg) and self.script != this_script():
            import_script(self.script, self.preparation)
        _sweeps_script = self.script
        try:
            return self.task(cfg)
        finally:
            _sweeps_script = None


def names_the_script(cfg: DictConfig) -> bool:
    """Whether a job's config builds something the script defines (`__main__.Wide`). Only then is the script
    imported: one whose configs live in modules works as before, `__main__` guard or not."""
    return any(target.startswith(f"{MAIN}.") for _, target in targets(plain(cfg)))


def import_script(script: str, preparation: dict[str, Any]) -> None:
    """Import the user's script in this process as multiprocessing's spawn does: as `__mp_main__`, which
    `__main__` then names."""
    global _importing
    _importing = True
    try:
        multiprocessing.spawn.prepare(preparation)
    except SystemExit as error:  # the script ran its command line: zenexp's (refused by main), or its own
        raise UserError(f"{script}: {NOT_GUARDED}") from error
    except Exception as error:
        raise UserError(f"{script}: the job could not import it: {type(error).__name__}: {error}") from error
    finally:
        _importing = False


def started_while_importing() -> str | None:
    """Why zenexp cannot start here: a sweep's job, importing the user's script, ran the script's command line
    (a script without a `__main__` guard)."""
    return NOT_GUARDED if _importing else None
