"""A personal-finance life simulation: split each month's income from age 18 to 80.

`--env=finance` trains on `FinanceEnvironment`, a batched TF-Agents PyEnvironment;
evaluation, videos and `experiments/evaluate.py` play the same lives through
`FinanceGymEnv`, its one-life gymnasium view. Both step `FinanceSim`, which simulates a
batch of lives with numpy, so `finance_report.py` can score hundreds of fixed
allocations on the same lives in seconds. Every life is drawn from its own seed, so life
`s` is the same alone, in a batch, in training or in evaluation.

What a life is (all money in dollars; every parameter is an `--env_kwargs` key, see
`FinanceParams`):

- **Time:** one step per month, 744 steps from age 18 to 80. The episode ends at 80
  (a termination: there is nothing after it). There is no retirement: the salary runs
  to the end.
- **Salary:** the starting annual gross is uniform in [salary_low, salary_high]. Each
  January it grows by inflation times a real raise drawn from N(real_raise_mean,
  raise_std), clipped to [-10%, +20%].
- **Unemployment:** each month a job is lost with the probability that makes
  `unemployment_rate` a year; a spell lasts `unemployment_months` with no pay.
- **Income tax:** progressive brackets on annual gross pay (`TAX_BRACKETS`, in
  year-0 dollars and indexed to inflation), charged monthly as a twelfth of the annual
  tax on twelve times the month's pay.
- **Living expenses:** `living_share` of the after-tax salary, paid even in
  unemployment (a household keeps its costs when the pay stops).
- **Home:** bought at 18 for `house_low`..`house_high` times the salary, with a
  `down_payment` share given (the starting net worth), the rest on a 30-year
  fixed-rate mortgage at `mortgage_rate` (an APR: monthly rate APR/12, the mortgage
  convention) with the amortized payment L r / (1 - (1 + r)^-360). The home's value
  grows by N(home_growth, home_std) a year, drawn each January.
- **Markets:** one annual return per year, N(market_return, market_std) clipped at
  -90%, applied as the monthly rate (1 + R)^(1/12) - 1, so twelve months compound to R.
  Both accounts hold the same market. Inflation likewise compounds monthly to its
  annual rate.
- **Accounts:** the tax-advantaged one (Roth-like: paid from after-tax money, then
  untaxed) takes at most `tax_advantaged_cap` a year (indexed), and the employer
  matches `match_rate` of contributions up to `match_limit` of the salary. The taxable
  one pays `capital_gains_rate` on its returns as they accrue (losses are credited), a
  simplification of taxing realized gains.
- **Each month,** the take-home pay first covers living expenses (or rent) and the
  mortgage's required payment. What is left is split by the action's four non-negative
  weights, normalized to shares (all-zero weights split equally): an extra mortgage
  payment, tax-advantaged saving, taxable saving and luxury (spent, so it leaves net
  worth). Extra payments past the loan and contributions past the cap go to the taxable
  account.
- **A short month** (unemployment) is covered from the taxable account, then from the
  tax-advantaged one with an `early_withdrawal_penalty`. Whatever is still missing goes
  unpaid: first the mortgage payment, which counts as a late payment with a
  `late_fee` (a share of the payment) added to the loan, then living costs, which are
  borrowed on the same debt balance. After `foreclose_after` late payments in a row
  the home is sold at a `foreclosure_discount`, the proceeds repay the loan, anything
  left over goes to the taxable account and any deficiency stays as debt with the same
  monthly payment. From then on the household rents at `rent_yield` of a comparable
  home's value a year.
- **Net worth** is home value (if owned) minus debt plus both accounts. The reward is
  its monthly change in age-18 dollars (deflated by the monthly price index), times
  `reward_scale` (1e-6 by default: a return is the lifetime real gain in $M). Nominal
  figures over 62 years of inflation would read as fortunes.
- **Observation** (float32, each in [0, 1] by construction, so the spec's bounds hold):
  age (linear over the life), then salary, home value, loan balance, required payment,
  tax-advantaged and taxable balances, each as x / (x + scale) (unbounded amounts
  cannot be scaled linearly into a bound), whether employed, and the late-payment
  count over `foreclose_after`. With `liquidity_features`, two more: the months of costs
  (living, rent, required payment) that the taxable account covers, and that both
  accounts cover, each as m / (m + 12).

How an environment presents a life (`tfa_suite.finance.env`), without changing it:
`decision_months` months per step (the weights held for them, the rewards summed), and
`reward_baseline`, a reference rule whose shadow household lives the same life (same
salary path, job losses, markets and house prices) and whose reward is subtracted. The
shadow's rewards do not depend on the agent's actions, so the best policy is the same
while most of the market's noise cancels.

What it leaves out: retirement, pensions and withdrawals in old age, moving house,
refinancing, children, health, correlated or fat-tailed markets, and any utility of
luxury beyond zero: the reward values net worth alone.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tfa_suite.finance.params import (
    _SCALES,
    MONTHS,
    MONTHS_PER_YEAR,
    MORTGAGE_MONTHS,
    START_AGE,
    YEARS,
    FinanceParams,
    amortized_payment,
    income_tax,
    monthly_rate,
    normalize_weights,
)


@dataclasses.dataclass
class _Scenario:
    """The exogenous draws of a batch of lives, made at reset: actions do not change them."""

    salary: np.ndarray  # [B, YEARS] annual gross salary, by year
    home_growth: np.ndarray  # [B, YEARS]
    market: np.ndarray  # [B, YEARS]
    employed: np.ndarray  # [B, MONTHS] bool
    house_multiple: np.ndarray  # [B]


def draw_scenario(params: FinanceParams, seeds: np.ndarray) -> _Scenario:
    """Draws each life from its own seed, so a life does not depend on its batch."""
    p, n = params, len(seeds)
    start, raises = np.empty(n), np.empty((n, YEARS))
    home, market = np.empty((n, YEARS)), np.empty((n, YEARS))
    multiple, lose = np.empty(n), np.empty((n, MONTHS))
    for i, seed in enumerate(seeds):
        rng = np.random.default_rng(int(seed))
        start[i] = rng.uniform(p.salary_low, p.salary_high)
        multiple[i] = rng.uniform(p.house_low, p.house_high)
        raises[i] = rng.normal(p.real_raise_mean, p.raise_std, YEARS)
        market[i] = rng.normal(p.market_return, p.market_std, YEARS)
        home[i] = rng.normal(p.home_growth, p.home_std, YEARS)
        lose[i] = rng.random(MONTHS)
    growth = (1.0 + p.inflation) * (1.0 + np.clip(raises, -0.1, 0.2))
    growth[:, 0] = 1.0
    salary = start[:, None] * np.cumprod(growth, axis=1)
    # A spell starts in a month with probability q, where 1 - (1 - q)^12 is the annual rate.
    q = 1.0 - (1.0 - p.unemployment_rate) ** (1.0 / MONTHS_PER_YEAR)
    starts = np.cumsum(lose < q, axis=1)
    lagged = np.zeros_like(starts)
    lagged[:, p.unemployment_months :] = starts[:, : -p.unemployment_months]
    return _Scenario(
        salary=salary,
        home_growth=np.clip(home, -0.9, None),
        market=np.clip(market, -0.9, None),
        employed=(starts - lagged) == 0,
        house_multiple=multiple,
    )


class FinanceSim:
    """A batch of lives, stepped together with numpy. All lives have the same length."""

    def __init__(self, params: FinanceParams | None = None):
        self.params = params or FinanceParams()
        self.month = 0
        self._scenario: _Scenario | None = None

    # -- state ---------------------------------------------------------------------------
    def reset(self, seeds: np.ndarray, repeats: int = 1) -> np.ndarray:
        """Starts the lives `seeds`, the whole list `repeats` times over (each life drawn
        once: copies of a life are the same life)."""
        p = self.params
        seeds = np.asarray(seeds, dtype=np.int64).reshape(-1)
        drawn = draw_scenario(p, seeds)
        arrays = (getattr(drawn, f.name) for f in dataclasses.fields(drawn))
        self._scenario = s = _Scenario(
            *(np.tile(x, (repeats,) + (1,) * (x.ndim - 1)) for x in arrays)
        )
        n = len(seeds) * repeats
        self.month = 0
        self.house_price = s.salary[:, 0] * s.house_multiple
        self.owned = np.ones(n, dtype=bool)
        self.loan = self.house_price * (1.0 - p.down_payment)
        self.payment = amortized_payment(self.loan, p.mortgage_rate / 12, MORTGAGE_MONTHS)
        self.tax_advantaged = np.zeros(n)
        self.taxable = np.zeros(n)
        self.late = np.zeros(n, dtype=np.int64)
        self.contributed = np.zeros(n)  # employee contributions this year
        self.matched = np.zeros(n)  # contributions that earned a match this year
        self.foreclosed_at = np.full(n, -1)  # the month of foreclosure, or -1
        return self.observation()

    @property
    def batch_size(self) -> int:
        return len(self.loan)

    @property
    def age(self) -> float:
        return START_AGE + self.month / MONTHS_PER_YEAR

    @property
    def done(self) -> bool:
        return self.month >= MONTHS

    def net_worth(self) -> np.ndarray:
        return self.house_price * self.owned - self.loan + self.tax_advantaged + self.taxable

    def deflator(self, month: int | None = None) -> float:
        """The price level at `month` (default: now) relative to age 18, compounded monthly."""
        month = self.month if month is None else month
        return (1.0 + self.params.inflation) ** (month / MONTHS_PER_YEAR)

    def real_net_worth(self) -> np.ndarray:
        """Net worth in age-18 dollars."""
        return self.net_worth() / self.deflator()

    def _year(self) -> int:
        return min(self.month // MONTHS_PER_YEAR, YEARS - 1)

    def _price_index(self) -> float:
        return (1.0 + self.params.inflation) ** self._year()

    def salary(self) -> np.ndarray:
        """This year's annual gross salary, in dollars of the day."""
        return self._scenario.salary[:, self._year()]

    def required_payment(self) -> np.ndarray:
        """This month's mortgage payment: the fixed payment, or what is left with interest."""
        due = self.loan * (1.0 + self.params.mortgage_rate / 12)
        return np.where(self.loan > 0, np.minimum(self.payment, due), 0.0)

    def observation(self) -> np.ndarray:
        s, y = self._scenario, self._year()
        employed = s.employed[:, min(self.month, MONTHS - 1)]
        money = {
            "salary": s.salary[:, y],
            "home_value": self.house_price * self.owned,
            "loan": self.loan,
            "required_payment": self.required_payment(),
            "tax_advantaged": self.tax_advantaged,
            "taxable": self.taxable,
        }
        columns = [np.full(self.batch_size, self.month / MONTHS)]
        columns += [x / (x + _SCALES[name]) for name, x in money.items()]
        columns += [employed.astype(np.float64), self.late / self.params.foreclose_after]
        if self.params.liquidity_features:
            costs = np.maximum(self.monthly_costs(), 1.0)
            for held in (self.taxable, self.taxable + self.tax_advantaged):
                months = held / costs
                columns.append(months / (months + 12.0))
        return np.clip(np.stack(columns, axis=1), 0.0, 1.0).astype(np.float32)

    def monthly_costs(self) -> np.ndarray:
        """What a month costs the household whatever it earns: living expenses, rent (after
        a foreclosure) and the mortgage's required payment, in dollars of the day."""
        p, y = self.params, self._year()
        salary = self._scenario.salary[:, y]
        living = p.living_share * (salary - income_tax(salary, self._price_index())) / 12
        rent = np.where(self.owned, 0.0, p.rent_yield * self.house_price / 12)
        return living + rent + self.required_payment()

    # -- one month ---------------------------------------------------------------------------
    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Advances every life one month; returns observations, rewards and the month's flows.

        The flows account for the whole change in net worth: `net_worth_change` equals
        take_home + match + market_gain + home_gain - living - rent - luxury - interest
        - late_fee - withdrawal_penalty - foreclosure_loss.
        """
        if self._scenario is None or self.done:
            raise RuntimeError("FinanceSim.step needs a reset first (the lives have ended)")
        p, s, t, y = self.params, self._scenario, self.month, self._year()
        shares = normalize_weights(actions, p.weight_floor)
        if shares.shape != (self.batch_size, 4):
            raise ValueError(f"finance actions must have shape [{self.batch_size}, 4]")
        if t % MONTHS_PER_YEAR == 0:
            self.contributed[:] = 0.0
            self.matched[:] = 0.0
        before = self.net_worth()
        index = self._price_index()
        salary = s.salary[:, y]
        flows = self._markets(y)

        gross = salary / 12 * s.employed[:, t]
        take_home = gross - income_tax(12 * gross, index) / 12
        living = p.living_share * (salary - income_tax(salary, index)) / 12
        required = self.required_payment()
        interest = self.loan * (p.mortgage_rate / 12)
        self.loan = self.loan + interest - required
        cash = take_home - living - flows["rent"] - required
        flows.update(take_home=take_home, living=living, interest=interest)
        flows.update(self._cover_short_month(np.maximum(-cash, 0.0), required))
        flows.update(self._allocate(np.maximum(cash, 0.0), shares, salary, index))

        flows["foreclosure_loss"] = self._foreclose(t)
        self.month += 1
        change = self.net_worth() - before
        real_change = (before + change) / self.deflator() - before / self.deflator(t)
        flows.update(
            net_worth_change=change, net_worth=before + change, real_net_worth_change=real_change
        )
        return self.observation(), real_change * p.reward_scale, flows

    def _markets(self, year: int) -> dict[str, np.ndarray]:
        """Markets and home prices move on the balances held at the start of the month."""
        p, s = self.params, self._scenario
        market = monthly_rate(s.market[:, year])
        gain_adv = self.tax_advantaged * market
        gain_taxable = self.taxable * market * (1.0 - p.capital_gains_rate)
        home_rate = monthly_rate(s.home_growth[:, year])
        home_gain = self.house_price * home_rate * self.owned
        self.tax_advantaged += gain_adv
        self.taxable += gain_taxable
        rent = np.where(self.owned, 0.0, p.rent_yield * self.house_price / 12)
        self.house_price = self.house_price * (1.0 + home_rate)
        return {"market_gain": gain_adv + gain_taxable, "home_gain": home_gain, "rent": rent}

    def _cover_short_month(self, short: np.ndarray, required: np.ndarray) -> dict[str, np.ndarray]:
        """Covers a shortfall from taxable savings, then tax-advantaged ones with a penalty;
        the rest goes unpaid: the mortgage payment first (a late payment), then living costs
        (borrowed), both onto the debt."""
        p = self.params
        from_taxable = np.minimum(short, self.taxable)
        self.taxable -= from_taxable
        still = short - from_taxable
        withdrawn = np.minimum(still / (1.0 - p.early_withdrawal_penalty), self.tax_advantaged)
        self.tax_advantaged -= withdrawn
        penalty = withdrawn * p.early_withdrawal_penalty
        unpaid = np.maximum(still - (withdrawn - penalty), 0.0)
        missed = np.minimum(unpaid, required) > 1e-6
        late_fee = np.where(missed, p.late_fee * required, 0.0)
        self.loan += unpaid + late_fee
        self.late = np.where(missed, self.late + 1, 0)
        return {
            "withdrawal_penalty": penalty,
            "late_fee": late_fee,
            "missed_payment": missed.astype(np.float64),
        }

    def _allocate(
        self, free: np.ndarray, shares: np.ndarray, salary: np.ndarray, index: float
    ) -> dict[str, np.ndarray]:
        """Splits what is left by the shares; overpayments and capped contributions spill
        into the taxable account."""
        p = self.params
        extra = np.minimum(free * shares[:, 0], self.loan)
        self.loan -= extra
        room = np.maximum(p.tax_advantaged_cap * index - self.contributed, 0.0)
        contribution = np.minimum(free * shares[:, 1], room)
        match_room = np.maximum(p.match_limit * salary - self.matched, 0.0)
        matched = np.minimum(contribution, match_room)
        match = p.match_rate * matched
        self.contributed += contribution
        self.matched += matched
        self.tax_advantaged += contribution + match
        self.taxable += free * (shares[:, 0] + shares[:, 1] + shares[:, 2]) - extra - contribution
        return {"match": match, "luxury": free * shares[:, 3]}

    def _foreclose(self, month: int) -> np.ndarray:
        """Sells the homes of lives past the late-payment limit, at the forced-sale discount."""
        p = self.params
        hit = self.owned & (self.late >= p.foreclose_after)
        proceeds = np.where(hit, self.house_price * (1.0 - p.foreclosure_discount), 0.0)
        loss = np.where(hit, self.house_price * p.foreclosure_discount, 0.0)
        repaid = np.minimum(proceeds, self.loan)
        self.loan -= repaid
        self.taxable += proceeds - repaid
        self.owned &= ~hit
        self.late = np.where(hit, 0, self.late)
        self.foreclosed_at = np.where(hit, month, self.foreclosed_at)
        return loss
