from typing import Any

from torch import Tensor

class PILToTensor:
    def __call__(self, pic: Any) -> Tensor: ...
