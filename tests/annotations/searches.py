"""A user's own search, declared in Python and checked by mypy (never run): good edits pass, each bad one
carries `# type: ignore[<code>]`, which `warn_unused_ignores` keeps honest."""

from __future__ import annotations

from hydra_zen import store

from zenexp.configs import HyperbandPrunerConf, MedianPrunerConf, SearchConf, TPESamplerConf


def good_edits() -> None:
    wide = SearchConf(params={"optim.lr": "tag(log, interval(1e-5, 1.0))"}, n_trials=40, n_jobs=4)
    wide.direction = "maximize"
    store(wide, group="hydra/sweeper", name="wide_lr_search")
    TPESamplerConf(n_startup_trials=10, multivariate=True)
    MedianPrunerConf(n_startup_trials=3, n_warmup_steps=1)
    HyperbandPrunerConf(min_resource=1, reduction_factor=2)


def bad_edits() -> None:
    SearchConf(n_trials="40")  # type: ignore[arg-type]
    SearchConf(params=["optim.lr"])  # type: ignore[arg-type]
    SearchConf(params={"optim.lr": 0.1})  # type: ignore[dict-item]
    SearchConf(trials=40)  # type: ignore[call-arg]
    MedianPrunerConf(n_warmup_steps=0.5)  # type: ignore[arg-type]
    TPESamplerConf(n_startup_trials=None)  # type: ignore[arg-type]
