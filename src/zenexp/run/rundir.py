"""THE run directory: every file name, the one atomic write, the readers, and how a new one is made.

A run directory is made for one run only (`new_run_dir`, exclusive, never shared) and written only by that
run or a resume of it. Every record is written whole or not at all (`write_atomic`); a file someone
damaged or shared is read with one clear line, never a traceback.
"""

from __future__ import annotations

import fcntl
import io
import itertools
import json
import os
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from zenexp.errors import UserError

RUN_FILE = "run.json"  # overrides, versions, git commit, resumes
CONFIG_FILE = "config.yaml"  # the resolved config that gives the run's result
METRICS_FILE = "metrics.jsonl"  # one record per log call
SUMMARY_FILE = "summary.json"  # the final metrics
STATUS_FILE = "status.json"  # finished, failed or aborted, and the error or the signal
SWEEP_FILE = "sweep.json"  # in a sweep directory: the ledger of every job, written before the first starts
SWEEP_SUMMARY_FILE = "sweep_summary.json"  # in a sweep directory: every job's record
ATTEMPTS_DIR = ".attempts"  # in a sweep directory: earlier attempts of jobs a resume ran again from the start
LOCK_FILE = ".lock"  # held by the process running the run (or the sweep)
CHECKPOINT_DIR = "checkpoints"
LAST = "last.pt"
BEST = "best.pt"


def eval_files(checkpoint: str) -> tuple[str, str]:
    """What `zenexp eval` writes for `best` or `last`: the JSON record and the confusion matrix's picture."""
    suffix = "" if checkpoint == "best" else f"_{checkpoint}"
    return f"eval{suffix}.json", f"confusion_matrix{suffix}.png"


def remove_evaluations(run_dir: Path) -> None:
    """A resumed run's model changes: earlier evaluations no longer describe it."""
    for checkpoint in ("best", "last"):
        for name in eval_files(checkpoint):
            (run_dir / name).unlink(missing_ok=True)


HYDRA_SUBDIR = ".hydra"  # what Hydra writes: config.yaml, hydra.yaml, overrides.yaml
HYDRA_FILES = ("config.yaml", "hydra.yaml", "overrides.yaml")

#: The directories `new_run_dir` made in this process (run directories and their new parents).
made_here: set[Path] = set()
#: The run directories whose run (or resume) has begun writing records in this process.
begun: set[Path] = set()


# ---- writing ---------------------------------------------------------------------------------------------


def write_atomic(path: Path, content: str | bytes, exclusive: bool = False) -> None:
    """Write `path` whole or not at all: a temporary file, fsynced, then renamed over it (or, `exclusive`,
    linked, which fails if `path` exists). A full disk or a read-only folder is one line naming the path."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(temporary, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        if exclusive:
            os.link(temporary, path)
            temporary.unlink()
        else:
            os.replace(temporary, path)
    except FileExistsError as error:
        temporary.unlink(missing_ok=True)
        raise UserError(f"{path} exists already: a run never writes over another run's records") from error
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise UserError(
            f"cannot write {path}: {error.strerror or error}; free some disk space or choose a writable "
            f"directory (what was recorded before is intact)"
        ) from error


def write_json(path: Path, value: Any, exclusive: bool = False) -> None:
    write_atomic(path, json.dumps(value, indent=2) + "\n", exclusive)


def save_torch(path: Path, value: Any) -> None:
    """`torch.save` through `write_atomic`: a kill or a full disk never leaves half a checkpoint."""
    import torch

    buffer = io.BytesIO()
    torch.save(value, buffer)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, buffer.getvalue())


def write_status(run_dir: Path, status: str, **facts: Any) -> None:
    """`status.json`: finished, failed (with the error) or aborted (with the signal)."""
    write_json(run_dir / STATUS_FILE, {"status": status, "error": None, **facts})


@contextmanager
def in_use(folder: Path, what: str) -> Iterator[None]:
    """Hold `folder`'s lock while inside: a second process running the same run or sweep is refused in one
    line. The kernel lets go of it when the process dies, however it dies."""
    descriptor = _open_lock(folder, os.O_RDWR | os.O_CREAT)
    assert descriptor is not None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        raise UserError(
            f"{folder}: another zenexp process is running this {what}; wait for it to end, or stop it"
        ) from None
    try:
        yield
    finally:
        os.close(descriptor)


def is_in_use(folder: Path) -> bool:
    """Whether another process holds `folder`'s lock (without making a lock file where there is none)."""
    descriptor = _open_lock(folder, os.O_RDONLY)
    if descriptor is None:
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)
    return False


def _open_lock(folder: Path, flags: int) -> int | None:
    """The lock file, opened: never through a link, never waiting (a FIFO put there), a plain file only."""
    path = folder / LOCK_FILE
    try:
        descriptor = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise UserError(f"cannot lock {path}: {error.strerror or error}") from error
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise UserError(f"{path}: not a lock file (someone put something else there); remove it")
    return descriptor


def path_override(key: str, path: Path | str) -> str:
    """`key='<path>'`, quoted for Hydra's parser. A path with `$` is refused: Hydra would resolve a `${...}` in
    it even quoted (a folder named `${oc.env:SECRET}` would put a secret into the run's records)."""
    text = str(path)
    if "$" in text:
        raise UserError(f"{text}: a path with $ in it cannot be given to Hydra; rename or move it")
    quoted = text.replace("\\", "\\\\").replace("'", "\\'")
    return f"{key}='{quoted}'"


# ---- reading ---------------------------------------------------------------------------------------------


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from a run directory; a missing, empty or damaged file is one line naming it."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise UserError(f"{path}: no such file; is {path.parent} a zenexp run directory?") from error
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"{path}: not a readable JSON record ({error}); the file is damaged") from error
    if not isinstance(value, dict):
        raise UserError(f"{path}: expected a JSON object, found {type(value).__name__}; the file is damaged")
    return value


def read_yaml(path: Path) -> DictConfig | ListConfig:
    """A YAML record of a run directory (config.yaml, .hydra/overrides.yaml); damage is one line naming it."""
    try:
        return OmegaConf.load(path)
    except FileNotFoundError as error:
        raise UserError(f"{path}: no such file; is {path.parent} a zenexp run directory?") from error
    except Exception as error:  # noqa: BLE001  (OSError, decoding, YAML's and OmegaConf's own errors)
        raise UserError(
            f"{path}: not a readable YAML record ({type(error).__name__}); the file is damaged"
        ) from error


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The records of a run's `metrics.jsonl`; a line a killed run left half written, or any line that is
    not a record with a step, is skipped."""
    path = run_dir / METRICS_FILE
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines() if path.is_file() else []
    except OSError as error:
        raise UserError(f"{path}: cannot be read ({error.strerror})") from error
    return [record for record in _records(lines) if isinstance(record.get("step"), int)]


def _records(lines: list[str]) -> Iterator[dict[str, Any]]:
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            yield record


def keep_metrics_until(run_dir: Path, step: int) -> None:
    """Drop records after `step` (a resumed run writes them again)."""
    kept = [record for record in read_metrics(run_dir) if record["step"] <= step]
    write_atomic(run_dir / METRICS_FILE, "".join(json.dumps(record) + "\n" for record in kept))


# ---- making and discarding -------------------------------------------------------------------------------


def new_run_dir(base: str) -> str:
    """Make a fresh directory named `base` (or `base-1`, `base-2`, ... when taken) and return its name.

    Creating it is exclusive, so two runs started in the same second never share a directory. Used as the
    resolver `${zenexp.new_dir:...}` in `hydra.run.dir` and `hydra.sweep.dir`; OmegaConf caches it per
    config, and Hydra copies that cache to every job of a sweep, so a sweep's jobs share their sweep dir.
    """
    for attempt in itertools.count():
        path = Path(base if attempt == 0 else f"{base}-{attempt}")
        new_parents = [parent for parent in path.parents if not parent.exists()]
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.mkdir()
        except FileExistsError:
            continue
        except OSError as error:
            raise UserError(f"cannot make the run directory {path}: {error.strerror or error}") from error
        made_here.update(folder.resolve() for folder in [path, *new_parents])
        return str(path)
    raise AssertionError("unreachable")


def discard_refused(run_dir: Path, output_subdir: str | None, job_log: str) -> None:
    """Remove what Hydra wrote for a refused new run: only in a directory this process made for it (or a
    job folder of a sweep directory it made), only Hydra's own files, only when nothing else is there, and
    the folders only when that leaves them empty. Never used for a resume."""
    run_dir = run_dir.resolve()
    if run_dir in begun or not run_dir.is_dir() or not {run_dir, run_dir.parent} & made_here:
        return
    if {entry.name for entry in run_dir.iterdir()} - {output_subdir, job_log}:
        return  # something else lives there: keep all of it
    subdir = (run_dir / output_subdir).resolve() if output_subdir else None
    if subdir is not None and subdir.parent == run_dir:  # `..` or `a/b` would reach elsewhere
        for name in HYDRA_FILES:
            (subdir / name).unlink(missing_ok=True)
        _remove_if_empty(subdir)
    (run_dir / job_log).unlink(missing_ok=True)
    for folder in [run_dir, *run_dir.parents]:  # and the empty parents made for it (outputs/<date>)
        if folder != run_dir and folder not in made_here:
            break
        _remove_if_empty(folder)


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:  # not empty, or gone: something else lives there, keep it
        pass
