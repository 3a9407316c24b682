"""A sweep's grid file: which config fields a sweep varies, and over what.

    [fixed]                      # settings every trial shares (optional)
    intervals = 18
    [grid]                       # every combination is a trial
    policy = ["tiered", "strict"]
    rsi_oversold = [25, 30, 35]
    [search]                     # ``--trials N``: Optuna's TPE sampler draws from these
    rsi_oversold = {low = 20, high = 40, step = 5}
    max_entry_price = {low = 0.5, high = 0.6, step = 0.01}
    policy = ["tiered", "strict"]

Each value goes through ``config.parse_value`` and ``Config``'s checks, exactly as a config file's would, before
anything runs: a bad one stops the sweep naming the grid file, the field and the value. Combinations are
checked too (all of them for ``[grid]``, every corner of the box for ``[search]``; the cross-field rules are
orderings, so a box whose corners pass holds no bad combination). A trial's config is the defaults, then
``[fixed]``, then the trial's values; the environment is not read, so the grid file alone fixes every trial.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator

from fsm_bot.config import FIELDS, Config, parse_value
from fsm_bot.errors import ConfigError
from fsm_bot.values import frozen

TABLES = ("fixed", "grid", "search")
KEY_VERSION = 1  # bump when what a trial-chunk's stored result holds changes: older results are then rerun
CORNERS_MAX = 4096
STEPS_MAX = 10_000


@frozen
class Range:
    """A numeric search range: ``low..high``, on a ``step`` grid (exact values) or continuous (``log`` scale)."""

    low: Any
    high: Any
    step: Any = None
    log: bool = False

    def values(self) -> list[Any]:
        """The values on the step grid (exact Decimals for money), low first."""
        n = int((Decimal(str(self.high)) - Decimal(str(self.low))) / Decimal(str(self.step)))
        return [self.at(i) for i in range(n + 1)]

    def at(self, i: int) -> Any:
        x = Decimal(str(self.low)) + i * Decimal(str(self.step))
        return type(self.low)(x) if not isinstance(self.low, Decimal) else x


@frozen
class Grid:
    path: Path
    base: Config
    grid: dict[str, list[Any]]
    search: dict[str, Range | list[Any]]

    @property
    def varied(self) -> list[str]:
        """The fields a trial may change, in the file's order."""
        return list(dict.fromkeys([*self.grid, *self.search]))

    def trials(self) -> list[Config]:
        """Every combination of ``[grid]``, in the file's order (the last field varies fastest)."""
        names = list(self.grid)
        return [self.trial(dict(zip(names, combo))) for combo in itertools.product(*self.grid.values())]

    def trial(self, values: dict[str, Any]) -> Config:
        where = ", ".join(f"{k} = {v}" for k, v in values.items())
        try:
            return self.base.replace(**values)
        except ConfigError as exc:
            raise ConfigError(f"{self.path}: the trial {where}: {exc}") from None

    def space(self) -> dict[str, list[Any] | Range]:
        """What ``--trials`` samples: ``[search]``, with ``[grid]``'s lists as choices."""
        return {**{k: v for k, v in self.grid.items() if k not in self.search}, **self.search}

    def extremes(self) -> Iterator[Config]:
        """Configs at every corner of what the sweep may run (all of ``[grid]``; ``[search]``'s box)."""
        space = self.space()
        sides = [v if isinstance(v, list) else [v.low, v.high] for v in space.values()]
        count = 1
        for s in sides:
            count *= len(s)
        if count > CORNERS_MAX:
            raise ConfigError(f"{self.path}: {count:,} combinations to check; at most {CORNERS_MAX:,} (fewer values)")
        for combo in itertools.product(*sides):
            yield self.trial(dict(zip(space, combo)))


def _value(path: Path, table: str, name: str, raw: Any, base: Config) -> Any:
    """One value parsed and checked as a config file's would be."""
    value = parse_value(name, raw, f"{path}: [{table}] ")
    try:
        base.replace(**{name: value})
    except ConfigError as exc:
        raise ConfigError(f"{path}: [{table}] {exc}") from None
    return value


def _range(path: Path, name: str, spec: dict[str, Any], base: Config) -> Range:
    where = f"{path}: [search] {name}"
    if name not in FIELDS:
        raise ConfigError(f"{path}: [search] unknown setting {name!r}; known settings: {', '.join(sorted(FIELDS))}")
    unknown = set(spec) - {"low", "high", "step", "log"}
    if unknown or "low" not in spec or "high" not in spec:
        raise ConfigError(f"{where}: expected {{low = .., high = .., step = ..}} (step or log optional), "
                          f"got keys {sorted(spec)}")
    kind = FIELDS[name].type
    if kind == "str":
        raise ConfigError(f"{where}: a text setting takes a list of choices, not a range")
    low, high = (_value(path, "search", name, spec[k], base) for k in ("low", "high"))
    if not low < high:
        raise ConfigError(f"{where}: low = {low} must be below high = {high}")
    step = spec.get("step")
    if step is not None:
        step = parse_value(name, step, f"{where} step: ")
        if not step > 0 or (Decimal(str(high)) - Decimal(str(low))) % Decimal(str(step)):
            raise ConfigError(f"{where}: step = {step} must be > 0 and divide high - low = {high - low}")
    elif kind == "Decimal":
        raise ConfigError(f"{where}: an exact (money) setting needs a step")
    log = spec.get("log", False)
    if not isinstance(log, bool) or (log and (step is not None or not low > 0)):
        raise ConfigError(f"{where}: log = true needs low > 0 and no step")
    r = Range(low, high, step, log)
    if step is not None:
        if (high - low) / step > STEPS_MAX:
            raise ConfigError(f"{where}: more than {STEPS_MAX:,} steps")
        for v in r.values():
            _value(path, "search", name, v, base)
    return r


def _choices(path: Path, table: str, name: str, raw: Any, base: Config) -> list[Any]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{path}: [{table}] {name}: expected a list of one or more values, got {str(raw)[:40]!r}")
    values = [_value(path, table, name, v, base) for v in raw]
    if len(set(values)) < len(values):
        raise ConfigError(f"{path}: [{table}] {name}: a value appears twice")
    return values


def load(path: Path) -> Grid:
    """The grid file, every value and combination checked; a bad one is a ``ConfigError`` naming it."""
    try:
        doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--grid {path}: not a readable TOML file "
                          f"({getattr(exc, 'strerror', None) or str(exc)[:80]})") from None
    extra = [k for k in doc if k not in TABLES or not isinstance(doc[k], dict)]
    if extra:
        raise ConfigError(f"{path}: unknown table or key {extra[0]!r}; a grid file has the tables "
                          "[fixed], [grid] and [search]")
    fixed = {name: parse_value(name, raw, f"{path}: [fixed] ") for name, raw in doc.get("fixed", {}).items()}
    try:
        base = Config().replace(**fixed)
    except ConfigError as exc:
        raise ConfigError(f"{path}: [fixed] {exc}") from None
    grid = {n: _choices(path, "grid", n, raw, base) for n, raw in doc.get("grid", {}).items()}
    search = {n: _choices(path, "search", n, raw, base) if isinstance(raw, list) else
              _range(path, n, raw, base) if isinstance(raw, dict) else _choices(path, "search", n, raw, base)
              for n, raw in doc.get("search", {}).items()}
    for name in [*grid, *search]:
        if name in fixed:
            raise ConfigError(f"{path}: {name} is both [fixed] and varied")
        if name == "interval_minutes":
            raise ConfigError(f"{path}: interval_minutes cannot vary: trials are compared on the same intervals; "
                              "set it in [fixed]")
    if not grid and not search:
        raise ConfigError(f"{path}: nothing to vary: give a [grid] or a [search] table")
    g = Grid(Path(path), base, grid, search)
    for _ in g.extremes():  # each combination (a corner of a range) through Config's checks
        pass
    return g


def suggest(trial: Any, grid: Grid) -> Config:
    """The config an Optuna trial draws from the grid's search space (a step grid is drawn by its index,
    so money stays exact and a value is never a float's neighbour)."""
    values: dict[str, Any] = {}
    for name, spec in grid.space().items():
        if isinstance(spec, list):
            values[name] = spec[trial.suggest_categorical(name, list(range(len(spec))))]
        elif spec.step is not None:
            values[name] = spec.at(trial.suggest_int(name, 0, len(spec.values()) - 1))
        elif FIELDS[name].type == "int":
            values[name] = trial.suggest_int(name, spec.low, spec.high, log=spec.log)
        else:
            values[name] = trial.suggest_float(name, spec.low, spec.high, log=spec.log)
    return grid.trial(values)


def canonical(value: Any) -> Any:
    """One spelling per value: 0.6, 0.60 and 6E-1 are the same setting, so they name the same trial."""
    return format(value.normalize(), "f") if isinstance(value, Decimal) else value


def trial_key(cfg: Config, data_sha256: str) -> str:
    """A trial's name: a digest of its whole config and of the data file, so that a stored result is read back
    only for the same settings on the same candles."""
    values = {k: canonical(getattr(cfg, k)) for k in cfg.to_json()}
    text = json.dumps({"config": values, "data": data_sha256, "v": KEY_VERSION}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def shown(cfg: Config, names: list[str]) -> dict[str, Any]:
    """The varied fields of a config, as JSON-able values (money as exact strings)."""
    return {n: str(v) if isinstance(v, Decimal) else v for n in names for v in [getattr(cfg, n)]}

