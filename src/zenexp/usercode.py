"""A user's own code: the script or module that registered an option zenexp does not ship (run.json's
`registered_by`, named in one line when a later rerun, resume or eval cannot find the option).

zenexp never imports a module or runs a script named in a run directory: it only names them."""

from __future__ import annotations

import os
import shlex
import site
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from zenexp.errors import UserError
from zenexp.schema import plain, targets

MAIN = "__main__"  # what is recorded for a script that has no file (an interactive session)


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
    """`this_script()`, or `__main__` where it is no script of the user's (a notebook's kernel)."""
    script = this_script()
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


def this_script() -> str:
    """This process's `__main__`: its script's absolute path, the module `python -m` ran, or `__main__` where
    it has no file (an interactive session)."""
    main = sys.modules[MAIN]
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name:
        return str(spec.name)
    file = getattr(main, "__file__", None)
    return os.path.abspath(file) if file else MAIN


def is_zenexp_itself(name: str) -> bool:
    """Whether `this_script()` is zenexp's own command (`python -m zenexp`, the `zenexp` console script)."""
    return name.partition(".")[0] == "zenexp" or Path(name).name == "zenexp"


# ---- saying where to run a recorded run --------------------------------------------------------------------


def registration(run_file: Path, choice: str, where: Any) -> str:
    """`registered_by[choice]` as a run directory holds it: a module's name or a script's path, checked (a run
    directory may come from anyone; zenexp only ever names what it holds, never imports or runs it)."""
    script = isinstance(where, str) and where.startswith("/") and where.isprintable()
    module = isinstance(where, str) and all(part.isidentifier() for part in where.split("."))
    if not (script or module):
        raise UserError(
            f"{run_file}: registered_by[{choice!r}] is not a module or script name; the file is damaged"
        )
    return str(where)


def not_registered(run_dir: Path, choice: str, where: str, command: str, started: Any) -> str:
    """Why a run's option is not in the store now, and what to run instead: `where` registered it (checked by
    `registration`); `started` is the run's recorded command line (`sys.argv`), as its run.json holds it."""
    shown_run = shlex.quote(str(run_dir))
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
