"""`zenexp eval`: a saved model on the test split, the same number the run reported, and its confusion
matrix in the run directory and in SwanLab."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

import zenexp
from tests.conftest import SwanLabRun, in_process, run, write_cifar10
from zenexp.cli import main
from zenexp.run.evaluation import Evaluation, confusion_table


@pytest.mark.slow
def test_eval_gives_the_test_accuracy_the_run_reported_with_its_confusion_matrix(in_tmp_path: Path) -> None:
    first = run("trainer.epochs=2")
    done = in_process("eval", str(first.output_dir))
    assert done.returncode == 0, done.stderr

    saved = json.loads((first.output_dir / "eval.json").read_text())
    summary = json.loads((first.output_dir / "summary.json").read_text())
    assert saved["test_accuracy"] == summary["test_accuracy"] == first.metrics["test_accuracy"]
    assert saved["checkpoint"] == "checkpoints/best.pt" and saved["epochs_finished"] == summary["best_epoch"]
    matrix = saved["confusion_matrix"]
    assert len(matrix) == 10 and sum(map(sum, matrix)) == 359  # every test image, once
    assert sum(matrix[i][i] for i in range(10)) / 359 == pytest.approx(saved["test_accuracy"])
    for digit in range(10):
        assert saved[f"test_accuracy/{digit}"] == pytest.approx(summary[f"test_accuracy/{digit}"])
    assert f"accuracy {saved['test_accuracy']:.4f}" in done.stdout
    assert "true \\ predicted" in done.stdout and done.stdout.count("\n") > 12

    png = Image.open(first.output_dir / "confusion_matrix.png")
    assert png.size[0] > 400 and len(set(png.convert("RGB").get_flattened_data())) > 10  # drawn, not blank
    evaluation = SwanLabRun(first.output_dir, part=1)  # the run's own SwanLab run is part 0
    assert evaluation.start.name == "eval trainer.epochs=2 (best.pt)" and "eval" in list(
        evaluation.start.tags
    )
    assert evaluation.scalars["test_accuracy"][0][1] == pytest.approx(saved["test_accuracy"])
    assert "test/confusion_matrix" in evaluation.media


@pytest.mark.slow
def test_eval_of_the_last_checkpoint_and_on_files_moved_elsewhere(in_tmp_path: Path) -> None:
    write_cifar10(in_tmp_path / "data")
    first = run("dataset=cifar10", "model=net", "trainer.epochs=2", "tracker.mode=disabled")
    (in_tmp_path / "data").rename(in_tmp_path / "moved")

    done = in_process("eval", str(first.output_dir), "--checkpoint", "last", "dataset.root=moved")
    assert done.returncode == 0, done.stderr
    saved = json.loads((first.output_dir / "eval_last.json").read_text())
    assert saved["checkpoint"] == "checkpoints/last.pt" and saved["epochs_finished"] == 2
    assert saved["overrides"] == ["dataset.root=moved"]
    assert (first.output_dir / "confusion_matrix_last.png").is_file()
    assert not (first.output_dir / "swanlog").exists()  # the run's tracker.mode=disabled holds

    done = in_process("eval", str(first.output_dir))  # the files are no longer where the run found them
    assert done.returncode == 1 and "dataset=cifar10: no CIFAR-10 files" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["optim.lr=0.1"], "only dataset.root, dataset.download, dataset.in_memory, trainer.device"),
        (["dataset.split_seed=1"], "the model and the test split are the run's own"),
        (["hydra.job.env_set.X=1"], "only dataset.root"),
        (["--checkpoint", "middle"], "invalid choice: 'middle'"),
        (["trainer.device=tpu"], "trainer.device=tpu: not a device"),
    ],
)
def test_eval_refuses_what_would_change_the_model_or_the_test_split(
    args: list[str], expected: str, quick_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as refused:
        main(["eval", str(quick_run), *args])
    assert refused.value.code in (1, 2)  # a zenexp refusal, or argparse's
    assert expected in capsys.readouterr().err
    assert not (quick_run / "eval.json").exists()


@pytest.mark.slow
def test_eval_of_a_damaged_or_missing_checkpoint_is_one_line(quick_run: Path) -> None:
    best = quick_run / "checkpoints" / "best.pt"
    best.write_bytes(b"not a checkpoint")
    done = in_process("eval", str(quick_run))
    assert done.returncode == 1 and f"{best}: cannot use it" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    best.unlink()
    done = in_process("eval", str(quick_run))
    assert done.returncode == 1 and "no such checkpoint" in done.stderr


def test_the_confusion_table_puts_true_classes_in_rows() -> None:
    evaluation = Evaluation(0.5, 0.75, {"cat": 1.0, "dog": 0.5}, [[2, 0], [1, 1]])
    lines = confusion_table(evaluation, ("cat", "dog")).splitlines()
    assert lines[1].split() == ["cat", "dog", "accuracy"]
    assert lines[2].split() == ["cat", "2", "0", "1.0000"] and lines[3].split() == ["dog", "1", "1", "0.5000"]


@pytest.mark.slow
def test_a_resumed_run_is_evaluated_and_its_older_evaluation_removed(in_tmp_path: Path) -> None:
    first = run("trainer.epochs=1", "tracker.mode=disabled")
    assert in_process("eval", str(first.output_dir)).returncode == 0
    resumed = zenexp.resume(first.output_dir, ["trainer.epochs=2"])
    assert not (first.output_dir / "eval.json").exists()  # it described the model before the resume
    assert not (first.output_dir / "confusion_matrix.png").exists()

    evaluated = zenexp.evaluate_run(first.output_dir, "best", ["tracker.mode=disabled"])  # the Python API
    saved = json.loads((first.output_dir / "eval.json").read_text())
    assert saved["test_accuracy"] == evaluated.evaluation.accuracy == resumed.metrics["test_accuracy"]
    assert evaluated.json == first.output_dir / "eval.json"
