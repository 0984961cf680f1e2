"""What checking a config costs a run: the CLI's pre-check (compose + validate), the guard Hydra resolves
while setting up (once per job: the second resolution is free), and the job's own check.

    python benchmarks/check_overhead.py

Prints milliseconds; the first pre-check in a process is what `zenexp ...` pays once per command. The sweep
pre-checks compose once per choice of config groups and check each other value against its field alone
(`zenexp.checks.points.check_points`): a 300-point sweep should cost less than twice one run's check.
"""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable

import zenexp  # noqa: F401  (registers the configs)
from zenexp.checks.fields import check_config
from zenexp.checks.guard import check_guarded
from zenexp.cli import check
from zenexp.configs.schema import compose_config


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return (time.perf_counter() - start) * 1000


def main() -> None:
    overrides = ["model=large", "optim=adam", "optim.lr=0.01", "trainer.epochs=2"]
    first = timed(lambda: check(overrides, quiet=True))
    pre_check = statistics.median(timed(lambda: check(overrides, quiet=True)) for _ in range(20))
    compose = statistics.median(timed(lambda: compose_config(overrides)) for _ in range(20))
    cfg = compose_config(overrides)
    in_job = statistics.median(timed(lambda: check_config(cfg, overrides)) for _ in range(20))
    roots = [compose_config(overrides, with_hydra=True) for _ in range(20)]  # fresh: nothing cached
    guard = statistics.median(timed(functools.partial(check_guarded, root)) for root in roots)
    sweep = timed(
        lambda: check(["-m", "optim.lr=0.1,0.01,0.001", "model=small,large,net", "dataset=fake"], quiet=True)
    )
    print(f"{'CLI pre-check of one run':<48} {pre_check:7.1f} ms")
    print(f"{'  of which composing the config':<48} {compose:7.1f} ms")
    print(f"{'the guard Hydra resolves before building anything':<48} {guard:7.1f} ms")
    print(f"{'check inside the job (validate_job)':<48} {in_job:7.1f} ms")
    added = pre_check + guard + in_job
    print(f"{'added to a run from the command line':<48} {added:7.1f} ms   (target < 100)")
    print(f"{'first pre-check in a process (+ one-time imports)':<48} {first:7.1f} ms")
    print(f"{'9-job sweep pre-check':<48} {sweep:7.1f} ms")
    for points in (300, 3000):
        sweep_args = ["-m", f"seed=range(0,{points})", *overrides]
        sweep = statistics.median(timed(functools.partial(check, sweep_args, quiet=True)) for _ in range(3))
        label = f"{points:,}-point sweep pre-check (seed=range)"
        print(f"{label:<48} {sweep:7.1f} ms   ({sweep / pre_check:.1f}x one run's)")


if __name__ == "__main__":
    main()
