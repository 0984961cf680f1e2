"""A search's space: Hydra's sweep overrides (`choice`, `range`, `interval`, `tag(log|int, ...)`) as Optuna
distributions, each trial's values back as overrides, and the samplers that can sample the space."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep

from zenexp.errors import UserError

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution


def search_space(
    params: Mapping[str, str], arguments: Sequence[str]
) -> tuple[dict[str, BaseDistribution], list[str]]:
    """The distributions to sample, by override key (`optim.lr`, `model`), from the search's `params` and the
    command line's sweep overrides (`choice(...)`, `range(...)`, `interval(...)`, `tag(log, interval(...))`);
    and the command line's other overrides, which every trial takes as they are. A key the command line
    gives one value is not searched: the value given is the one every trial takes."""
    parser = OverridesParser.create()
    try:
        searched = parser.parse_overrides([f"{key}={value}" for key, value in params.items()])
        given = parser.parse_overrides(list(arguments))
    except Exception as error:  # noqa: BLE001  (Hydra's parse errors: one line)
        raise UserError(f"hydra.sweeper.params: {str(error).splitlines()[0]}") from None
    given_keys = {o.get_key_element() for o in given}
    fixed_keys = {o.get_key_element() for o in given if not o.is_sweep_override()}
    space: dict[str, BaseDistribution] = {}
    fixed: list[str] = []
    for override in searched:  # the search's own, unless the command line says otherwise
        key = override.get_key_element()
        if key in given_keys:
            continue
        if override.is_sweep_override():
            space[key] = _distribution(override)
        else:  # a param of one value: every trial takes it
            fixed.append(f"{key}={override.get_value_element_as_str()}")
    for override in given:
        key = override.get_key_element()
        if not override.is_sweep_override():
            fixed.append(str(override.input_line))
        elif key not in fixed_keys:
            space[key] = _distribution(override)
    if not space:
        raise UserError(
            "hydra.sweeper.params: nothing to search; give choice(...), range(...) or interval(...) values"
        )
    return space, fixed


def _distribution(override: Override) -> BaseDistribution:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    value = override.value()
    name = str(override.input_line)
    try:
        values = [] if isinstance(value, IntervalSweep) else list(override.sweep_iterator())
    except ValueError as error:  # range(0, 10, 0)
        raise UserError(f"{name}: {error}") from None
    if not isinstance(value, IntervalSweep) and getattr(value, "tags", None):
        raise UserError(f"{name}: tags (log, int) are for interval() only")
    if isinstance(value, ChoiceSweep) or (isinstance(value, RangeSweep) and value.shuffle):
        plain = [v for v in values if isinstance(v, (str, int, float, bool))]
        if len(plain) < len(values):  # a list or a dict: Hydra would write it as text, not what was meant
            raise UserError(f"{name}: a searched choice() takes plain values (numbers, names, true/false)")
        return CategoricalDistribution(plain)
    if isinstance(value, RangeSweep):
        numbers = [v for v in values if isinstance(v, int) and not isinstance(v, bool)]
        if not numbers or len(numbers) < len(values):
            raise UserError(f"{name}: a searched range() takes whole numbers and holds at least one")
        return IntDistribution(min(numbers), max(numbers), step=abs(int(value.step or 1)))
    if isinstance(value, IntervalSweep):
        low, high, tags = value.start, value.end, set(value.tags)
        if tags - {"log", "int"}:
            raise UserError(f"{name}: an interval takes the tags log and int only")
        if low is None or high is None or not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise UserError(f"{name}: an interval needs finite bounds, low < high")
        if "log" in tags and low <= 0:
            raise UserError(f"{name}: an interval on a log scale needs low > 0")
        if "int" in tags:  # Hydra reads interval bounds as floats: whole numbers are asked for by a tag
            if not (float(low).is_integer() and float(high).is_integer()):
                raise UserError(f"{name}: an int interval needs whole-number bounds")
            return IntDistribution(int(low), int(high), log="log" in tags)
        return FloatDistribution(float(low), float(high), log="log" in tags)
    raise UserError(f"{name}: a search samples choice(...), range(...) and interval(...) only")


def ends(distribution: BaseDistribution) -> list[Any]:
    """The values that stand for a sampled key when a search is checked: each choice, or the two ends of a
    range or interval."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if isinstance(distribution, CategoricalDistribution):
        return list(distribution.choices)
    assert isinstance(distribution, (FloatDistribution, IntDistribution))
    return [distribution.low, distribution.high]


PLAIN_VALUE = re.compile(r"[\w./:+-]*")


def _read_back(text: str) -> Any:
    """What Hydra reads `key=text` as: `1` is a number, `true` a truth value, `small` a name."""
    return OverridesParser.create().parse_override(f"key={text}").value()


def trial_overrides(params: Mapping[str, Any]) -> list[str]:
    """A trial's sampled values as overrides (`optim.lr=0.0123`, `model=small`); a name that Hydra would read
    as more than one value (`c,d`) is quoted."""
    lines = []
    for key, value in params.items():
        if isinstance(value, float):
            text = repr(value)
        elif isinstance(value, str) and not (PLAIN_VALUE.fullmatch(value) and _read_back(value) == value):
            text = "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
        else:
            text = "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        lines.append(f"{key}={text}")
    return lines


def grid_space(space: Mapping[str, BaseDistribution]) -> dict[str, list[Any]]:
    """The search space as the grid sampler takes it: every value of each choice and range."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    grid: dict[str, list[Any]] = {}
    for key, distribution in space.items():
        if isinstance(distribution, CategoricalDistribution):
            grid[key] = list(distribution.choices)
        elif isinstance(distribution, IntDistribution) and not distribution.log:
            grid[key] = list(range(distribution.low, distribution.high + 1, distribution.step))
        else:
            raise UserError(
                f"hydra.sweeper.params.{key}: the grid sampler takes choice(...) and range(...) values, not "
                f"intervals; give the values to try"
            )
    return grid


def sampler_problems(target: str, space: Mapping[str, BaseDistribution]) -> list[str]:
    """What a sampler (by its `_target_`) cannot sample in this space: the grid takes choices and ranges,
    CMA-ES numbers only."""
    from optuna.distributions import CategoricalDistribution

    if target == "optuna.samplers.GridSampler":
        try:
            grid_space(space)
        except UserError as error:
            return [str(error)]
    chosen = [key for key, d in space.items() if isinstance(d, CategoricalDistribution)]
    if target == "optuna.samplers.CmaEsSampler" and chosen:
        return [
            f"hydra.sweeper.params.{chosen[0]}: CMA-ES samples numbers, not choices; search it with "
            f"hydra/sweeper/sampler=tpe, or fix it (e.g. {chosen[0]}=... on the command line)"
        ]
    return []


def sampler(make: Callable[..., Any], space: Mapping[str, BaseDistribution], trials_run: int) -> Any:
    """The study's sampler, from its config (a partial). Its seed moves on by the trials a resumed search has
    run, so that it does not draw the same trials again; the grid sampler gets its grid (and keeps its
    seed: it gives trial N the grid's point N in an order of its seed)."""
    import optuna

    if isinstance(make, optuna.samplers.BaseSampler):  # a user's config without `_partial_: true`
        raise UserError(
            f"hydra.sweeper.sampler: {type(make).__name__} is built whole; a search's sampler config is a "
            f"partial (_partial_: true), as zenexp's are"
        )
    target = getattr(make, "func", make)
    problems = sampler_problems(f"optuna.samplers.{target.__name__}", space)
    if problems:
        raise UserError(problems[0])
    if target is optuna.samplers.GridSampler:  # its order is its seed's: the same on resume
        return make(search_space=grid_space(space))
    seed = getattr(make, "keywords", {}).get("seed")
    return make(**({} if seed is None or not trials_run else {"seed": int(seed) + trials_run}))


def grid_points(sampler: Any, space: Mapping[str, BaseDistribution]) -> int | None:
    """How many points the grid sampler's grid has (each is one trial); None for other samplers."""
    import optuna

    if not isinstance(sampler, optuna.samplers.GridSampler):
        return None
    return math.prod(len(values) for values in grid_space(space).values())
