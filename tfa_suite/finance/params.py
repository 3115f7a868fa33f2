"""The finance simulation's parameters and money math: brackets, rates, payments, shares.

See `tfa_suite.finance.sim` for what a simulated life is.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any

import numpy as np

from tfa_suite.errors import UserError

MONTHS_PER_YEAR = 12
START_AGE = 18
END_AGE = 80
MONTHS = (END_AGE - START_AGE) * MONTHS_PER_YEAR
YEARS = END_AGE - START_AGE
MORTGAGE_MONTHS = 360

# Annual gross income thresholds (year-0 dollars) and the marginal rate above each.
TAX_BRACKETS = ((0.0, 0.0), (12_000.0, 0.10), (45_000.0, 0.22), (100_000.0, 0.24),
                (190_000.0, 0.32), (240_000.0, 0.35), (600_000.0, 0.37))  # fmt: skip

ACTION_NAMES = ("extra_mortgage", "tax_advantaged", "taxable", "luxury")
OBSERVATION_NAMES = ("age", "salary", "home_value", "loan", "required_payment",
                     "tax_advantaged", "taxable", "employed", "late_payments")  # fmt: skip
# With liquidity_features: months of living costs (and rent, and the mortgage payment)
# that the taxable account covers, and that both accounts cover, each as m / (m + 12).
LIQUIDITY_NAMES = ("taxable_months", "savings_months")
# The reference households of `reward_baseline`: fixed weights their shadow lives play.
BASELINE_RULES = {"tax_advantaged": (0.0, 1.0, 0.0, 0.0)}
# The x / (x + scale) scales of the money observations, in dollars (salary: annual).
_SCALES = {"salary": 100_000.0, "home_value": 500_000.0, "loan": 500_000.0,
           "required_payment": 5_000.0, "tax_advantaged": 1e6, "taxable": 1e6}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class FinanceParams:
    """The simulation's parameters; annual rates unless the name says otherwise."""

    salary_low: float = 30_000.0
    salary_high: float = 70_000.0
    real_raise_mean: float = 0.01
    raise_std: float = 0.03
    inflation: float = 0.025
    unemployment_rate: float = 0.03
    unemployment_months: int = 6
    living_share: float = 0.5
    house_low: float = 3.0
    house_high: float = 5.0
    down_payment: float = 0.1
    mortgage_rate: float = 0.065
    home_growth: float = 0.03
    home_std: float = 0.06
    market_return: float = 0.07
    market_std: float = 0.16
    tax_advantaged_cap: float = 23_000.0
    match_rate: float = 0.5
    match_limit: float = 0.06
    capital_gains_rate: float = 0.15
    early_withdrawal_penalty: float = 0.10
    late_fee: float = 0.05
    foreclose_after: int = 4
    foreclosure_discount: float = 0.25
    rent_yield: float = 0.05
    reward_scale: float = 1e-6
    # How the environment presents the life (none of these changes the life itself):
    # months per decision (12: one step a year, the weights held for the year);
    # "none", or a reference rule whose shadow household, living the same life, is
    # subtracted from the reward; and two extra observations of how liquid the savings are.
    decision_months: int = 1
    reward_baseline: str = "none"
    liquidity_features: bool = False
    # Weights at or below this count as zero: a policy whose outputs are squashed into
    # [0, 1] (tanh heads) can then say "nothing here" without reaching the bound exactly.
    weight_floor: float = 0.0

    def observation_names(self) -> tuple[str, ...]:
        return OBSERVATION_NAMES + (LIQUIDITY_NAMES if self.liquidity_features else ())

    @classmethod
    def from_kwargs(cls, kwargs: dict[str, Any]) -> FinanceParams:
        """Builds and checks the parameters from `--env_kwargs`, in one-line errors."""
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(kwargs) - set(names))
        if unknown:
            raise UserError(
                f"--env=finance has no parameter {', '.join(unknown)}; it takes: {', '.join(names)}"
            )
        values = {}
        for f in dataclasses.fields(cls):
            if f.name not in kwargs:
                continue
            value = kwargs[f.name]
            if f.type in ("str", "bool"):
                values[f.name] = _typed(f.name, value, f.type)
                continue
            kind = int if f.type == "int" else float
            if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
                raise UserError(f"--env_kwargs {f.name} must be a number, got {value!r}")
            # is_integer, not int(value): JSON's Infinity and NaN would raise from int().
            if kind is int and not (
                isinstance(value, numbers.Integral) or float(value).is_integer()
            ):
                raise UserError(f"--env_kwargs {f.name} must be a whole number, got {value!r}")
            values[f.name] = kind(value)
        params = cls(**values)
        params.check()
        return params

    def check(self) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise UserError(f"--env=finance: {message}")

        for f in dataclasses.fields(self):
            if f.type in ("int", "float"):
                need(math.isfinite(getattr(self, f.name)), f"{f.name} must be finite")
        need(0 < self.salary_low <= self.salary_high, "need 0 < salary_low <= salary_high")
        need(0 < self.house_low <= self.house_high, "need 0 < house_low <= house_high")
        need(self.raise_std >= 0 and self.home_std >= 0 and self.market_std >= 0,
             "the std parameters must be >= 0")  # fmt: skip
        need(-0.5 < self.inflation < 1, "inflation must be in (-0.5, 1)")
        need(0 <= self.unemployment_rate < 1, "unemployment_rate must be in [0, 1)")
        need(self.unemployment_months >= 1, "unemployment_months must be >= 1")
        for name in ("living_share", "down_payment", "capital_gains_rate", "match_limit",
                     "early_withdrawal_penalty", "foreclosure_discount"):  # fmt: skip
            need(0 <= getattr(self, name) < 1, f"{name} must be in [0, 1)")
        for name in ("mortgage_rate", "tax_advantaged_cap", "match_rate", "late_fee",
                     "rent_yield"):  # fmt: skip
            need(getattr(self, name) >= 0, f"{name} must be >= 0")
        need(self.foreclose_after >= 1, "foreclose_after must be >= 1")
        need(self.reward_scale > 0, "reward_scale must be > 0")
        need(0 <= self.weight_floor < 1, "weight_floor must be in [0, 1)")
        need(
            self.decision_months >= 1 and MONTHS % self.decision_months == 0,
            f"decision_months must divide the life's {MONTHS} months (1, 2, 3, 4, 6, 12, ...)",
        )
        need(
            self.reward_baseline == "none" or self.reward_baseline in BASELINE_RULES,
            f"reward_baseline must be none or {', '.join(BASELINE_RULES)}, "
            f"not {self.reward_baseline!r}",
        )


def _typed(name: str, value: Any, kind: str) -> Any:
    if kind == "bool":
        if not isinstance(value, bool):
            raise UserError(f"--env_kwargs {name} must be true or false, got {value!r}")
        return value
    if not isinstance(value, str):
        raise UserError(f"--env_kwargs {name} must be a string, got {value!r}")
    return value


def monthly_rate(annual: np.ndarray | float) -> np.ndarray | float:
    """The monthly rate that compounds to `annual` over twelve months."""
    return (1.0 + annual) ** (1.0 / MONTHS_PER_YEAR) - 1.0


def amortized_payment(principal: np.ndarray, monthly: float, months: int) -> np.ndarray:
    """The fixed payment that repays `principal` in `months` at `monthly` interest."""
    if monthly == 0:
        return principal / months
    return principal * monthly / (1.0 - (1.0 + monthly) ** -months)


def income_tax(annual_gross: np.ndarray, price_index: np.ndarray) -> np.ndarray:
    """Annual tax on `annual_gross`, with the brackets indexed by `price_index`."""
    tax = np.zeros_like(annual_gross)
    edges = [lo for lo, _ in TAX_BRACKETS[1:]] + [math.inf]
    for (lo, rate), hi in zip(TAX_BRACKETS, edges):
        width = (hi - lo) * price_index
        tax += rate * np.clip(annual_gross - lo * price_index, 0.0, width)
    return tax


def normalize_weights(actions: np.ndarray, floor: float = 0.0) -> np.ndarray:
    """Action weights to shares summing to 1; all-zero (or negative) weights split equally.

    Weights are first clipped to the action spec's [0, 1] (NaN counts as 0), so no input
    can overflow the sum or make money vanish; weights at or below `floor` count as 0.
    """
    w = np.clip(np.nan_to_num(np.asarray(actions, dtype=np.float64), nan=0.0), 0.0, 1.0)
    if floor > 0:
        w = np.where(w <= floor, 0.0, w)
    total = w.sum(axis=-1, keepdims=True)
    return np.where(total > 1e-8, w / np.maximum(total, 1e-8), 1.0 / w.shape[-1])
