"""zenexp's commands run in-process as `main(argv)`: the code the command line runs, in the fast loop.
The same commands through a real subprocess are in test_cli.py, test_sweeps.py and test_resumable_sweeps.py."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pytest

from tests.conftest import QUICK, hashes, run
from zenexp.cli import main

OFFLINE = [*QUICK, "tracker.mode=disabled"]


def test_help_lists_the_groups_and_documents_the_fields(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--help"])
    shown = capsys.readouterr().out
    assert "model      small | large | net" in shown
    assert "optim.lr" in shown and "trainer.batch_size" in shown


def test_python_dash_m_zenexp_runs_the_command(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["zenexp", "check", "model=large"])
    with pytest.raises(SystemExit) as done:
        runpy.run_module("zenexp", run_name="__main__")
    assert done.value.code == 0 and "all 1 job valid" in capsys.readouterr().out


def test_a_sweep_writes_its_ledger_and_its_resume_runs_nothing_twice(
    in_tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["-m", "optim.lr=0.1,0.01", *OFFLINE])
    (sweep,) = (in_tmp_path / "multirun").glob("*/*")
    ledger = json.loads((sweep / "sweep.json").read_text())
    assert [job["overrides"][0] for job in ledger["jobs"]] == ["optim.lr=0.1", "optim.lr=0.01"]
    assert "2 of 2 jobs finished" in capsys.readouterr().out
    finished = hashes(sweep / "0")
    main(["resume", str(sweep)])
    shown = capsys.readouterr()
    assert "2 of 2 jobs finished, 0 to run" in shown.out + shown.err
    assert hashes(sweep / "0") == finished


def test_compare_ranks_runs_by_validation_accuracy(
    in_tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    learns, stalls = run(*OFFLINE, "optim.lr=0.1"), run(*OFFLINE, "optim.lr=0.00001")
    with pytest.raises(SystemExit) as done:
        main(["compare", str(stalls.output_dir), str(learns.output_dir), "--png", "curves.png"])
    assert done.value.code == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if "finished" in line]
    assert [row[-1] for row in rows] == ["optim.lr=0.1", "optim.lr=0.00001"]
    assert learns.metrics["val_accuracy"] > stalls.metrics["val_accuracy"]
    assert (in_tmp_path / "curves.png").stat().st_size > 0
