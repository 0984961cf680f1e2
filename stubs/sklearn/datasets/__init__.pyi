from typing import Literal

import numpy as np
import numpy.typing as npt

def load_digits(
    *, n_class: int = 10, return_X_y: Literal[True], as_frame: Literal[False] = False
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]: ...
