"""`python -m zenexp.parallel.spawned FOLDER RANK PARENT_PID`: a rank of a job on several devices that rank 0 started
(zenexp.parallel.distributed). It builds what rank 0 built, from the job rank 0 pickled in FOLDER (rank 0's private
temporary folder), trains its shards in step with the other ranks, and records nothing. Why it failed goes to
FOLDER/rankN.error, for rank 0 to report."""

from __future__ import annotations

import multiprocessing.spawn
import pickle
import random
import sys
import traceback
from pathlib import Path

import numpy as np
import torch

from zenexp.parallel import distributed
from zenexp.run.trainer import Trainer


def main(folder: Path, rank: int, parent: int) -> None:
    distributed.die_with_parent(parent)
    job = pickle.loads((folder / distributed.JOB_FILE).read_bytes())
    preparation, world, port, built, trainer, seed, threads, device = job
    multiprocessing.spawn.prepare(preparation)  # the job's __main__, where a user's model may be defined
    parts = pickle.loads(built)
    torch.use_deterministic_algorithms(True, warn_only=True)  # as rank 0 (train.make_reproducible)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    ranks = distributed.join_group(rank, world, port, device)
    Trainer(parts, trainer, ranks, seed, device, threads).follow()


if __name__ == "__main__":
    folder, rank, parent = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    try:
        main(folder, rank, parent)
    except KeyboardInterrupt:  # a second signal sent to this rank: rank 0 reports it as this rank's death
        sys.exit(130)
    except BaseException as error:
        lines = [*traceback.format_exception(error), f"{distributed.one_line(error)}\n"]
        (folder / f"rank{rank}.error").write_text("".join(lines), encoding="utf-8")
        sys.exit(1)
