"""How well a model classifies one split: loss, accuracy overall and per class, and the confusion matrix
(as numbers, as text and as a picture)."""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class Evaluation:
    """`confusion[i][j]` counts images of class i predicted as class j."""

    loss: float
    accuracy: float
    class_accuracy: dict[str, float]
    confusion: list[list[int]]

    def metrics(self, split: str) -> dict[str, float]:
        """`{"test_loss": ..., "test_accuracy": ..., "test_accuracy/cat": ...}` for split `test`."""
        per_class = {f"{split}_accuracy/{name}": value for name, value in self.class_accuracy.items()}
        return {f"{split}_loss": self.loss, f"{split}_accuracy": self.accuracy, **per_class}


@torch.no_grad()
def evaluate(
    model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], classes: tuple[str, ...]
) -> Evaluation:
    """The model's loss and predictions over `batches` of (normalised images, labels), all of one split."""
    model.eval()
    loss, predictions, targets = torch.zeros(()), [], []
    for images, labels in batches:
        logits = model(images)
        loss = loss.to(logits.device) + F.cross_entropy(logits.float(), labels, reduction="sum")
        predictions.append(logits.argmax(1))
        targets.append(labels)
    predicted, labels = torch.cat(predictions), torch.cat(targets)
    n = len(classes)
    confusion = torch.bincount(labels * n + predicted, minlength=n * n).reshape(n, n).cpu()
    per_class = confusion.diagonal().double() / confusion.sum(1).clamp(min=1)
    return Evaluation(
        loss=loss.item() / len(labels),
        accuracy=confusion.diagonal().sum().item() / len(labels),
        class_accuracy=dict(zip(classes, per_class.tolist(), strict=True)),
        confusion=confusion.tolist(),
    )


def confusion_table(evaluation: Evaluation, classes: tuple[str, ...]) -> str:
    """The confusion matrix as text: a row per true class, a column per predicted class, and each class's
    accuracy at the end of its row."""
    width = max(
        6, *(len(name) for name in classes), *(len(str(c)) for row in evaluation.confusion for c in row)
    )
    header = " " * width + " " + " ".join(f"{name:>{width}}" for name in classes) + "  accuracy"
    rows = [
        f"{name:>{width}} "
        + " ".join(f"{count:>{width}}" for count in row)
        + f"  {evaluation.class_accuracy[name]:.4f}"
        for name, row in zip(classes, evaluation.confusion, strict=True)
    ]
    return "\n".join(["true \\ predicted", header, *rows])


def confusion_png(evaluation: Evaluation, classes: tuple[str, ...], title: str) -> bytes:
    """The confusion matrix as a PNG picture: counts in each cell, rows the true classes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = 1.5 + 0.6 * len(classes)
    figure, axes = plt.subplots(figsize=(size + 1.5, size))
    image = axes.imshow(evaluation.confusion, cmap="Blues")
    figure.colorbar(image, ax=axes)
    ticks = range(len(classes))
    axes.set_xticks(ticks, classes, rotation=45, ha="right")
    axes.set_yticks(ticks, classes)
    axes.set(xlabel="predicted", ylabel="true", title=title)
    brightest = max(max(row) for row in evaluation.confusion) or 1
    for i, row in enumerate(evaluation.confusion):
        for j, count in enumerate(row):
            colour = "white" if count > brightest / 2 else "black"
            axes.text(j, i, str(count), ha="center", va="center", color=colour, fontsize="small")
    figure.tight_layout()
    picture = io.BytesIO()
    figure.savefig(picture, format="png", dpi=100)
    plt.close(figure)
    return picture.getvalue()
