"""Every check of a job before any work starts, each problem one short line naming the field.

Cheapest first:
- `overrides`: the overrides as typed: they parse, and `_target_` and the other underscore keys are not for
  the command line;
- `composing`: composing (Hydra and OmegaConf) explained: bad types, unknown keys and unknown options;
- `fields` and `combinations`: the composed task config: missing values, bounds declared with `Annotated`,
  targets no registered config uses, and combinations that cannot work (data files missing, a split left
  empty, ...);
- `hydra_settings`: the composed `hydra` config: every target and logging class is a registered one (the
  allowlist), the run directory is a new one, and Hydra's output stays inside it.

`points` runs them for one job or a sweep's jobs: the CLI and `zenexp check` do before Hydra starts.
`launch()` reaches them through `guard`, before Hydra builds anything.
"""

from zenexp.checks.points import check_point

__all__ = ["check_point"]
