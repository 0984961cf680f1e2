"""`python -m zenexp [overrides]` and the `zenexp` command."""

from __future__ import annotations

import os

import hydra
from omegaconf import DictConfig

from zenexp import UserError, task
from zenexp.train import RunResult


def _user_error(error: BaseException | None) -> UserError | None:
    """The UserError behind `error`, if any (Hydra wraps errors raised while instantiating)."""
    while error is not None and not isinstance(error, UserError):
        error = error.__cause__
    return error


def _run(cfg: DictConfig) -> RunResult:
    try:
        return task(cfg)
    except Exception as error:
        user_error = _user_error(error)
        if user_error is None or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        raise SystemExit(f"zenexp: error: {user_error}") from None


def main() -> None:
    hydra.main(config_path=None, config_name="zenexp", version_base="1.3")(_run)()


if __name__ == "__main__":
    main()
