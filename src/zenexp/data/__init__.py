"""The data a run reads: datasets as stored, image folders, batches on the device, augmentation."""

from zenexp.data.datasets import ImageData

__all__ = ["ImageData"]
