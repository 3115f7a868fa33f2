"""The finance life simulation: its formulas, its accounting, its specs and its seeding.

Expected values come from hand computations or independent formulas (a mortgage balance
simulated forward, a tax bracket sum written out, a net worth summed from the state), not
from the code path under test.
"""

from __future__ import annotations

import tfa_suite  # noqa: F401  -- first: it selects Keras 2 before TensorFlow loads

# isort: split

import gymnasium as gym
import numpy as np
import pytest
from tf_agents.environments import tf_py_environment
from tf_agents.environments import utils as env_utils
from tf_agents.trajectories import time_step as ts

import tfa_suite.envs.loading  # noqa: F401  -- registers the gymnasium id "finance"
from tfa_suite.errors import UserError
from tfa_suite.finance.env import FinanceEnvironment, FinanceGymEnv
from tfa_suite.finance.params import (
    MONTHS,
    FinanceParams,
    amortized_payment,
    income_tax,
    monthly_rate,
    normalize_weights,
)
from tfa_suite.finance.sim import FinanceSim

FIRST, MID, LAST = (int(t) for t in (ts.StepType.FIRST, ts.StepType.MID, ts.StepType.LAST))
LUXURY = np.array([0.0, 0.0, 0.0, 1.0])
TAX_ADVANTAGED = np.array([0.0, 1.0, 0.0, 0.0])
# Hard times: most months out of work, so savings run dry, payments are missed and homes
# are foreclosed.
HARD_TIMES = dict(unemployment_rate=0.6, unemployment_months=9)
# Almost never employed: every life misses payments from its first spell on.
NO_JOB = dict(unemployment_rate=0.9, unemployment_months=24)
# The flows whose sum is the month's change in net worth, with their signs.
FLOW_SIGNS = {
    "take_home": 1, "match": 1, "market_gain": 1, "home_gain": 1, "living": -1, "rent": -1,
    "luxury": -1, "interest": -1, "late_fee": -1, "withdrawal_penalty": -1,
    "foreclosure_loss": -1,
}  # fmt: skip


def make_sim(seeds, **kwargs) -> FinanceSim:
    sim = FinanceSim(FinanceParams.from_kwargs(kwargs))
    sim.reset(np.asarray(seeds))
    return sim


def state_net_worth(sim: FinanceSim) -> np.ndarray:
    """Home value if owned, minus debt, plus both accounts: summed from the state itself."""
    home = np.where(sim.owned, sim.house_price, 0.0)
    return home - sim.loan + sim.tax_advantaged + sim.taxable


def mixed_actions(rng: np.random.Generator, n: int) -> np.ndarray:
    """Random weights, with some all-zero, one-hot and float32-max rows among them."""
    actions = rng.random((n, 4))
    kind = rng.integers(0, 4, n)
    actions[kind == 1] = 0.0
    one_hot = kind == 2
    actions[one_hot] = np.eye(4)[rng.integers(0, 4, one_hot.sum())]
    actions[kind == 3] *= np.finfo(np.float32).max
    return actions.astype(np.float32)


# --- the formulas ------------------------------------------------------------------------


def test_amortized_payment_matches_the_textbook_mortgage():
    """$200,000 at 6.5% APR over 30 years is the published $1,264.14 a month."""
    payment = float(amortized_payment(np.array(200_000.0), 0.065 / 12, 360))
    assert round(payment, 2) == 1264.14


def test_amortized_payment_repays_the_loan_in_exactly_its_term():
    """Simulated forward month by month, the payment leaves ~0 after 360 months, not before;
    a cent less a month leaves dollars owing (so the check can tell)."""
    r = 0.065 / 12
    payment = float(amortized_payment(np.array(200_000.0), r, 360))

    def balance_after(pay: float, months: int) -> float:
        balance = 200_000.0
        for _ in range(months):
            balance = balance * (1 + r) - pay
        return balance

    assert abs(balance_after(payment, 360)) < 1e-6
    assert balance_after(payment, 359) > 0.99 * payment
    assert balance_after(payment - 0.01, 360) > 10.0


def test_amortized_payment_at_zero_rate_is_principal_over_months():
    """Zero interest: the loan is repaid in equal parts, elementwise over a batch."""
    got = amortized_payment(np.array([120_000.0, 360.0]), 0.0, 360)
    np.testing.assert_allclose(got, [333.3333333333333, 1.0], rtol=1e-15)


def test_sim_mortgage_reaches_zero_at_month_360():
    """In the sim, a household that always pays (never out of work) owes ~0 after exactly
    360 payments and still owes about a payment one month earlier."""
    sim = make_sim([3, 4], unemployment_rate=0.0)
    actions = np.tile(LUXURY, (2, 1))
    first_payment = sim.required_payment().copy()
    for _ in range(359):
        sim.step(actions)
    assert np.all(sim.loan > 0.99 * first_payment)
    sim.step(actions)
    np.testing.assert_allclose(sim.loan, 0.0, atol=1e-3)
    sim.step(actions)
    np.testing.assert_allclose(sim.required_payment(), 0.0, atol=1e-3)


@pytest.mark.parametrize("annual", [0.07, 0.025, -0.3, 0.0])
def test_monthly_rate_compounds_to_the_annual_rate(annual):
    """Twelve months at the monthly rate give the annual rate."""
    assert (1 + monthly_rate(annual)) ** 12 - 1 == pytest.approx(annual, abs=1e-14)


def test_monthly_rate_is_elementwise_and_below_a_twelfth():
    """Compounding: a positive annual rate's monthly rate is below annual / 12."""
    annual = np.array([0.07, 0.16])
    monthly = monthly_rate(annual)
    np.testing.assert_allclose((1 + monthly) ** 12 - 1, annual, atol=1e-14)
    assert np.all(monthly < annual / 12)


@pytest.mark.parametrize(
    "gross, index, expected",
    [
        (10_000.0, 1.0, 0.0),  # below the first threshold
        (30_000.0, 1.0, 0.10 * (30_000 - 12_000)),
        (50_000.0, 1.0, 0.10 * (45_000 - 12_000) + 0.22 * (50_000 - 45_000)),
        (
            700_000.0,
            1.0,
            0.10 * 33_000
            + 0.22 * 55_000
            + 0.24 * 90_000
            + 0.32 * 50_000
            + 0.35 * 360_000
            + 0.37 * 100_000,
        ),
        # Index 2 doubles every threshold: 24k, 90k, ...
        (24_000.0, 2.0, 0.0),
        (100_000.0, 2.0, 0.10 * (90_000 - 24_000) + 0.22 * (100_000 - 90_000)),
    ],
)
def test_income_tax_by_hand(gross, index, expected):
    assert float(income_tax(np.array(gross), index)) == pytest.approx(expected, rel=1e-12)


def test_income_tax_is_homogeneous_in_the_index():
    """Indexed brackets: doubling income and prices doubles the tax, at every income."""
    gross = np.linspace(0, 1_500_000, 301)
    np.testing.assert_allclose(
        income_tax(2 * gross, 2.0), 2 * income_tax(gross, 1.0), rtol=1e-12, atol=1e-9
    )


def test_sim_pays_the_hand_computed_take_home_and_living_costs():
    """A flat $50,000 salary with no inflation: every month takes home (50,000 - 4,400) / 12
    = 3,800 and spends half of it, 1,900, on living."""
    sim = make_sim(
        [0, 1],
        salary_low=50_000,
        salary_high=50_000,
        raise_std=0,
        real_raise_mean=0,
        inflation=0,
        unemployment_rate=0,
    )
    for _ in range(30):
        _, _, flows = sim.step(np.tile(LUXURY, (2, 1)))
        np.testing.assert_allclose(flows["take_home"], 3800.0, rtol=1e-12)
        np.testing.assert_allclose(flows["living"], 1900.0, rtol=1e-12)


def test_normalize_weights_shares():
    """Weights become shares summing to 1; all-zero or negative rows split equally; weights
    are clipped to the spec's [0, 1] first, so huge, infinite or NaN ones cannot overflow
    the sum or lose money."""
    big = np.finfo(np.float32).max
    shares = normalize_weights(
        np.array(
            [[0.1, 0.1, 0.2, 0], [0, 0, 0, 0], [-1, -5, 0, 0], [big, big, big, 0],
             [0.3, 0, 0, 0], [2, 1, 0, 0], [np.inf, np.nan, 0, 1]]
        )
    )  # fmt: skip
    np.testing.assert_allclose(
        shares,
        [[0.25, 0.25, 0.5, 0], [0.25] * 4, [0.25] * 4, [1 / 3, 1 / 3, 1 / 3, 0], [1, 0, 0, 0],
         [0.5, 0.5, 0, 0], [0.5, 0, 0, 0.5]],
        rtol=1e-15,
    )  # fmt: skip


# --- the accounting ----------------------------------------------------------------------


@pytest.mark.parametrize("setting", ["default", "hard_times"])
def test_net_worth_change_is_the_sum_of_the_flows_every_month(setting):
    """Every month of every life, the flows account for the whole change in net worth, and
    that change is the difference of the net worth summed from the state. Hard times must
    exercise unemployment, withdrawals, late fees and foreclosures (so the test is not
    vacuous)."""
    kwargs = HARD_TIMES if setting == "hard_times" else {}
    n = 48
    sim = make_sim(np.arange(100, 100 + n), **kwargs)
    rng = np.random.default_rng(11)
    nonzero = dict.fromkeys(FLOW_SIGNS, 0)
    out_of_work = 0
    while not sim.done:
        actions = mixed_actions(rng, n)
        if setting == "hard_times":
            actions[: n // 2] = LUXURY  # half the lives never save
        before = state_net_worth(sim)
        assert np.array_equal(before, sim.net_worth())
        _, _, flows = sim.step(actions)
        after = state_net_worth(sim)
        total = sum(sign * flows[name] for name, sign in FLOW_SIGNS.items())
        np.testing.assert_allclose(flows["net_worth_change"], total, rtol=1e-9, atol=1e-6)
        np.testing.assert_allclose(flows["net_worth_change"], after - before, rtol=1e-9, atol=1e-6)
        np.testing.assert_allclose(flows["net_worth"], after, rtol=1e-12, atol=1e-6)
        for name in FLOW_SIGNS:
            if name not in ("market_gain", "home_gain"):  # gains can be losses
                assert np.all(flows[name] >= 0), name  # the signs live in FLOW_SIGNS
            nonzero[name] += int(np.count_nonzero(flows[name]))
        out_of_work += int(np.count_nonzero(flows["take_home"] == 0))
    assert nonzero["take_home"] and nonzero["market_gain"] and nonzero["home_gain"]
    assert nonzero["match"] and nonzero["luxury"] and nonzero["interest"]
    if setting == "hard_times":
        assert out_of_work > 0
        for name in ("late_fee", "withdrawal_penalty", "foreclosure_loss", "rent"):
            assert nonzero[name] > 0, name


def test_reward_is_the_monthly_change_in_age_18_dollars():
    """The first reward is (net worth after / (1+inflation)^(1/12) - net worth at 18) * scale,
    and a life's rewards sum to its real net worth gain times the scale."""
    sim = make_sim([21, 22, 23], reward_scale=1e-3)
    start = state_net_worth(sim)
    rng = np.random.default_rng(2)
    _, reward, _ = sim.step(mixed_actions(rng, 3))
    expected = (state_net_worth(sim) / 1.025 ** (1 / 12) - start) * 1e-3
    np.testing.assert_allclose(reward, expected, rtol=1e-12)
    total = reward.copy()
    while not sim.done:
        total += sim.step(mixed_actions(rng, 3))[1]
    expected_total = (state_net_worth(sim) / 1.025**62 - start) * 1e-3
    np.testing.assert_allclose(total, expected_total, rtol=1e-9)


def _year_of_saving(sim: FinanceSim, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps twelve months of all-tax-advantaged actions, from January; returns the year's
    contributions (the rise in the tax-advantaged account less the match), its match and
    the cash that was free to split. Needs flat markets, so balances only move by flows."""
    contributed, match, free = np.zeros(n), np.zeros(n), np.zeros(n)
    for _ in range(12):
        adv, taxable, required = (
            sim.tax_advantaged.copy(),
            sim.taxable.copy(),
            sim.required_payment(),
        )
        _, _, flows = sim.step(np.tile(TAX_ADVANTAGED, (n, 1)))
        month_free = flows["take_home"] - flows["living"] - flows["rent"] - required
        assert np.all(month_free > 0)
        month_contribution = sim.tax_advantaged - adv - flows["match"]
        # What the cap turns away goes to the taxable account.
        np.testing.assert_allclose(
            sim.taxable - taxable, month_free - month_contribution, rtol=1e-9, atol=1e-6
        )
        contributed += month_contribution
        match += flows["match"]
        free += month_free
    return contributed, match, free


FLAT_MARKETS = dict(market_return=0.0, market_std=0.0, home_growth=0.0, home_std=0.0)
RICH = dict(
    salary_low=400_000, salary_high=400_000, unemployment_rate=0.0, house_low=2, house_high=2
)


@pytest.mark.parametrize(
    "plan",
    [
        dict(match_rate=0.5, match_limit=0.02),  # the match limit binds before the cap
        dict(match_rate=1.0, match_limit=0.3),  # the cap binds before the match limit
        dict(tax_advantaged_cap=1_000, match_rate=0.0),  # a low cap, no match
    ],
)
def test_tax_advantaged_cap_and_employer_match(plan):
    """All saving aimed at the tax-advantaged account: each year's contributions reach the
    indexed cap, cap * (1 + inflation)^year, and no more; the rest goes to the taxable
    account; the year's match is match_rate * min(contributions, match_limit * salary)."""
    n, inflation = 3, 0.025
    sim = make_sim([8, 9, 10], inflation=inflation, **RICH, **FLAT_MARKETS, **plan)
    p = sim.params
    for year in range(12):
        salary = sim.salary().copy()
        contributed, match, free = _year_of_saving(sim, n)
        cap = p.tax_advantaged_cap * (1 + inflation) ** year
        assert np.all(free > cap)  # so reaching the cap is possible
        np.testing.assert_allclose(contributed, cap, rtol=1e-9)
        expected_match = p.match_rate * np.minimum(contributed, p.match_limit * salary)
        np.testing.assert_allclose(match, expected_match, rtol=1e-9, atol=1e-9)
    if p.match_rate == 0:
        np.testing.assert_allclose(
            sim.tax_advantaged, sum(1_000 * 1.025**y for y in range(12)), rtol=1e-9
        )


# --- foreclosure -------------------------------------------------------------------------


def _runs_of_misses(missed: np.ndarray) -> np.ndarray:
    """The length of the run of consecutive missed payments ending at each month."""
    runs = np.zeros_like(missed, dtype=int)
    for t in range(missed.shape[1]):
        runs[:, t] = np.where(missed[:, t], (runs[:, t - 1] if t else 0) + 1, 0)
    return runs


# Two-month spells, half the years: misses add up past 3 long before 3 come in a row.
SHORT_SPELLS = dict(unemployment_rate=0.5, unemployment_months=2)


@pytest.mark.parametrize("foreclose_after, spells", [(1, NO_JOB), (3, NO_JOB), (3, SHORT_SPELLS)])
def test_foreclosure_comes_after_exactly_foreclose_after_missed_payments(foreclose_after, spells):
    """A home is sold in the month of its foreclose_after-th missed payment in a row, never
    earlier, and an owned home never sees that many misses in a row without a sale (misses
    with paid months between them do not add up). The observation shows the run so far
    over foreclose_after (0 once the home is sold) and whether the coming month is paid."""
    n, months = 16, 120
    sim = make_sim(np.arange(n), foreclose_after=foreclose_after, **spells)
    missed, owned = np.zeros((n, months), bool), np.zeros((n, months), bool)
    late_seen, employed_seen = np.zeros((n, months)), np.zeros((n, months))
    paid = np.zeros((n, months), bool)
    for t in range(months):
        owned[:, t] = sim.owned
        obs, _, flows = sim.step(np.tile(LUXURY, (n, 1)))
        missed[:, t] = flows["missed_payment"] > 0
        paid[:, t] = flows["take_home"] > 0
        late_seen[:, t], employed_seen[:, t] = obs[:, 8], obs[:, 7]
    runs = _runs_of_misses(missed)
    lost = sim.foreclosed_at >= 0
    if spells is NO_JOB:
        assert lost.all()
    else:  # some lives keep their homes through more misses than the limit, spread out
        spread_out = ~lost & (missed.sum(axis=1) >= 2 * foreclose_after)
        assert lost.any() and spread_out.any()
        assert np.all(runs[~lost] < foreclose_after)
    assert paid.any() and not paid.all()
    np.testing.assert_array_equal(employed_seen[:, :-1], paid[:, 1:])
    for i in np.flatnonzero(lost):
        f = sim.foreclosed_at[i]
        assert runs[i, f] == foreclose_after
        assert np.all(runs[i, :f] < foreclose_after)
        assert np.all(owned[i, : f + 1]) and not np.any(owned[i, f + 1 :])
        np.testing.assert_allclose(late_seen[i, :f] * foreclose_after, runs[i, :f], atol=1e-6)
        assert late_seen[i, f] == 0.0


@pytest.mark.parametrize("down_payment", [0.1, 0.6])
def test_foreclosure_sells_at_the_discount_and_settles_the_loan(down_payment):
    """In the foreclosure month the home goes at (1 - discount) of its value: the proceeds
    repay the loan, the surplus (a big down payment) lands in the taxable account, a
    deficiency (a small one) stays as debt, and the owned flag clears. Lives that never
    save let the loan be rebuilt by hand: loan + interest + living - take_home + late fee."""
    n = 12
    sim = make_sim(np.arange(40, 40 + n), down_payment=down_payment, **NO_JOB)
    discount = sim.params.foreclosure_discount
    checked, surplus, deficiency = np.zeros(n, bool), np.zeros(n), np.zeros(n)
    for t in range(150):
        loan, price, owned = sim.loan.copy(), sim.house_price.copy(), sim.owned.copy()
        before = state_net_worth(sim)
        _, _, flows = sim.step(np.tile(LUXURY, (n, 1)))
        hit = sim.foreclosed_at == t
        assert np.array_equal(hit, owned & ~sim.owned)
        if not hit.any():
            np.testing.assert_array_equal(flows["foreclosure_loss"], 0.0)
            continue
        sale_price = price + flows["home_gain"]  # this month's value
        proceeds = (1 - discount) * sale_price
        owed = loan + flows["interest"] + flows["living"] - flows["take_home"] + flows["late_fee"]
        np.testing.assert_allclose(flows["foreclosure_loss"][hit], discount * sale_price[hit])
        np.testing.assert_allclose(sim.loan[hit], np.maximum(owed - proceeds, 0)[hit], atol=1e-6)
        np.testing.assert_allclose(sim.taxable[hit], np.maximum(proceeds - owed, 0)[hit], atol=1e-6)
        # Net worth falls by at least the discount share of the home value.
        drop = before - state_net_worth(sim)
        assert np.all(drop[hit] >= discount * sale_price[hit] - flows["home_gain"][hit])
        surplus[hit], deficiency[hit] = sim.taxable[hit], sim.loan[hit]
        checked |= hit
    assert checked.all()
    if down_payment > 0.5:
        assert np.all(surplus > 0) and not np.any(deficiency)  # every sale left a surplus
    else:
        assert np.all(deficiency > 0) and not np.any(surplus)  # every sale left debt


@pytest.mark.parametrize("discount", [0.25, 0.0])
def test_foreclosure_never_raises_net_worth(discount):
    """The same lives and actions, once with foreclosure and once with a limit never
    reached: up to the sale they are identical, and in the month of the sale the foreclosed
    life is poorer by exactly discount * home value (not richer: the course bug)."""
    n = 16
    seeds = np.arange(200, 200 + n)
    params = dict(NO_JOB, foreclosure_discount=discount)
    sim = make_sim(seeds, **params)
    twin = make_sim(seeds, **params, foreclose_after=10**6)
    done = np.zeros(n, bool)
    for t in range(120):
        _, _, flows = sim.step(np.tile(LUXURY, (n, 1)))
        twin.step(np.tile(LUXURY, (n, 1)))
        hit = sim.foreclosed_at == t
        earlier = ~done & ~hit
        np.testing.assert_array_equal(sim.net_worth()[earlier], twin.net_worth()[earlier])
        loss = twin.net_worth() - sim.net_worth()
        np.testing.assert_allclose(
            loss[hit], discount * twin.house_price[hit], rtol=1e-9, atol=1e-6
        )
        assert np.all(loss[hit] >= -1e-6)
        np.testing.assert_allclose(flows["foreclosure_loss"][hit], loss[hit], rtol=1e-9, atol=1e-6)
        done |= hit
    assert done.all()
    assert not np.any(twin.foreclosed_at >= 0)


# --- observations ------------------------------------------------------------------------


def _assert_in_spec(obs: np.ndarray, spec, batch: int) -> None:
    assert obs.dtype == np.float32 and obs.shape == (batch, *spec.shape)
    assert np.all(np.isfinite(obs))
    assert np.all(obs >= spec.minimum) and np.all(obs <= spec.maximum)
    assert all(spec.check_array(row) for row in obs)


@pytest.mark.parametrize(
    "kwargs",
    [{}, HARD_TIMES, dict(salary_low=2e6, salary_high=5e6, house_low=10, house_high=20)],
)
def test_observations_stay_inside_the_spec(kwargs):
    """From reset and every step, with random, all-zero, one-hot and float32-max weights,
    each observation is float32 and within the observation spec's bounds."""
    n = 32
    env = FinanceEnvironment(batch_size=n, seed=5, **kwargs)
    spec = env.observation_spec()
    rng = np.random.default_rng(4)
    time_step = env.reset()
    _assert_in_spec(time_step.observation, spec, n)
    seen_max, seen_min = time_step.observation.copy(), time_step.observation.copy()
    while not time_step.is_last().all():
        time_step = env.step(mixed_actions(rng, n))
        _assert_in_spec(time_step.observation, spec, n)
        seen_max = np.maximum(seen_max, time_step.observation)
        seen_min = np.minimum(seen_min, time_step.observation)
    assert seen_min[:, 0].max() == 0.0 and seen_max[:, 0].min() == 1.0  # age spans [0, 1]
    assert np.all(seen_max[:, 1:7] < 1.0)  # the money columns saturate, never clip


def test_reset_and_step_observations_are_on_one_scale():
    """A month changes little, so the first step's observation is close to reset's in every
    column but the employment flag (an unscaled reset would be off by thousands)."""
    n = 64
    env = FinanceEnvironment(batch_size=n, seed=0, unemployment_rate=0.0)
    first = env.reset().observation
    step = env.step(np.tile(np.float32([0.25, 0.25, 0.25, 0.25]), (n, 1))).observation
    assert np.all(first[:, 1:5] > 0)  # salary, home, loan and payment are positive
    np.testing.assert_allclose(step, first, atol=0.02)
    # The money columns are x / (x + scale): the salary column within (0, 1) as documented.
    salary = env.sim.salary()
    np.testing.assert_allclose(first[:, 1], salary / (salary + 100_000.0), rtol=1e-6)
    np.testing.assert_allclose(first[:, 0], 0.0)
    np.testing.assert_allclose(first[:, 7], 1.0)  # employed


# --- seeding -----------------------------------------------------------------------------


def _trajectory(sim: FinanceSim, seeds, actions: np.ndarray, months: int = MONTHS):
    """Observations, rewards and net worths of `months` steps of `actions[t]` (per life)."""
    observations = [sim.reset(np.asarray(seeds))]
    rewards, worths = [], []
    for t in range(months):
        obs, reward, flows = sim.step(actions[t])
        observations.append(obs)
        rewards.append(reward)
        worths.append(flows["net_worth"])
    return np.stack(observations), np.stack(rewards), np.stack(worths)


def test_same_seeds_and_actions_give_the_same_lives():
    """Two resets with the same seeds and actions replay the lives bit for bit; another
    seed is another life."""
    rng = np.random.default_rng(9)
    actions = np.stack([mixed_actions(rng, 4) for _ in range(MONTHS)])
    sim = FinanceSim(FinanceParams.from_kwargs(HARD_TIMES))
    one = _trajectory(sim, [1, 2, 3, 4], actions)
    two = _trajectory(sim, [1, 2, 3, 4], actions)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
    other = _trajectory(sim, [1, 2, 3, 99], actions)
    np.testing.assert_array_equal(other[1][:, :3], one[1][:, :3])
    assert not np.allclose(other[1][:, 3], one[1][:, 3])
    assert other[0][0, 3, 1] != one[0][0, 3, 1]  # a different starting salary


def test_a_life_does_not_depend_on_its_batch():
    """Life 7 alone is life 7 at position 2 of the batch [5, 6, 7, 8]."""
    rng = np.random.default_rng(3)
    actions = np.stack([mixed_actions(rng, 4) for _ in range(MONTHS)])
    sim = FinanceSim(FinanceParams.from_kwargs(HARD_TIMES))
    batch = _trajectory(sim, [5, 6, 7, 8], actions)
    alone = _trajectory(sim, [7], actions[:, 2:3])
    for a, b in zip(batch, alone):
        np.testing.assert_array_equal(a[:, 2:3], b)


def test_gym_view_plays_the_same_life_as_the_batched_env():
    """FinanceGymEnv.reset(seed=s) is life 0 of FinanceEnvironment(seed=s), step for step
    over a whole life: the same observations and (float32) rewards, ending together."""
    seed, n = 31, 3
    env = FinanceEnvironment(batch_size=n, seed=seed)
    gym_env = FinanceGymEnv()
    obs, info = gym_env.reset(seed=seed)
    time_step = env.reset()
    np.testing.assert_array_equal(obs, time_step.observation[0])
    assert obs.dtype == np.float32 and info == {}
    rng = np.random.default_rng(0)
    for t in range(MONTHS):
        actions = mixed_actions(rng, n)
        time_step = env.step(actions)
        obs, reward, terminated, truncated, info = gym_env.step(actions[0])
        np.testing.assert_array_equal(obs, time_step.observation[0])
        assert np.float32(reward) == time_step.reward[0]
        assert terminated == (t == MONTHS - 1) == bool(time_step.is_last()[0])
        assert not truncated
    assert info["net_worth"] == pytest.approx(env.sim.net_worth()[0], rel=1e-15)


def test_gym_view_unseeded_resets_follow_the_last_seed():
    """After reset(seed=s), unseeded resets draw the same next lives in any env; a different
    seed draws different ones."""

    def salaries(seed: int) -> list[float]:
        env = FinanceGymEnv()
        env.reset(seed=seed)
        return [float(env.reset()[0][1]) for _ in range(3)]

    assert salaries(12) == salaries(12)
    assert salaries(12) != salaries(13)
    assert len(set(salaries(12))) == 3


# --- the PyEnvironment -------------------------------------------------------------------


def test_batched_env_ends_lives_and_auto_resets_to_new_ones():
    """Lives are MID steps with discount 1 until the 744th month, a LAST step with discount
    0; the next step starts new lives (FIRST, age 0) without a reset call. The rewards of a
    life sum to its real net worth gain times reward_scale."""
    n = 3
    env = FinanceEnvironment(batch_size=n, seed=0)
    assert env.batched and env.batch_size == n
    time_step = env.reset()
    np.testing.assert_array_equal(time_step.step_type, [FIRST] * n)
    np.testing.assert_array_equal(time_step.observation, FinanceSim().reset(np.arange(n)))
    start = state_net_worth(env.sim)
    rewards = np.zeros(n)
    rng = np.random.default_rng(1)
    for t in range(MONTHS):
        time_step = env.step(mixed_actions(rng, n))
        rewards += time_step.reward
        assert time_step.reward.dtype == np.float32
        if t < MONTHS - 1:
            np.testing.assert_array_equal(time_step.step_type, [MID] * n)
            np.testing.assert_array_equal(time_step.discount, np.ones(n, np.float32))
    np.testing.assert_array_equal(time_step.step_type, [LAST] * n)
    np.testing.assert_array_equal(time_step.discount, np.zeros(n, np.float32))
    end = state_net_worth(env.sim) / 1.025**62
    np.testing.assert_allclose(rewards, (end - start) * 1e-6, rtol=1e-5, atol=1e-6)
    assert set(env.get_info()) >= set(FLOW_SIGNS)
    old_salaries = time_step.observation[:, 1].copy()
    time_step = env.step(mixed_actions(rng, n))  # the action is ignored: new lives begin
    np.testing.assert_array_equal(time_step.step_type, [FIRST] * n)
    np.testing.assert_array_equal(time_step.observation[:, 0], 0.0)
    assert env.sim.month == 0
    assert not np.any(np.isin(time_step.observation[:, 1], old_salaries))
    time_step = env.step(mixed_actions(rng, n))
    np.testing.assert_array_equal(time_step.step_type, [MID] * n)


def test_validate_py_environment_and_tf_wrapper():
    """TF-Agents' own validation accepts a full life of random actions, and the env runs
    wrapped as a TFPyEnvironment with its batch size."""
    env = FinanceEnvironment(batch_size=2, seed=3)
    env_utils.validate_py_environment(env, episodes=1)
    tf_env = tf_py_environment.TFPyEnvironment(FinanceEnvironment(batch_size=2, seed=3))
    assert tf_env.batch_size == 2
    time_step = tf_env.reset()
    assert time_step.observation.shape == (2, 9)
    for _ in range(3):
        time_step = tf_env.step(np.full((2, 4), 0.5, np.float32))
    np.testing.assert_array_equal(time_step.step_type.numpy(), [MID, MID])
    assert time_step.reward.dtype.name == "float32"


# --- bad input ---------------------------------------------------------------------------


def test_unknown_parameter_is_named():
    with pytest.raises(UserError) as info:
        FinanceParams.from_kwargs({"nope": 1})
    assert "nope" in str(info.value)
    assert "mortgage_rate" in str(info.value)  # and the valid ones are listed


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"mortgage_rate": -0.01}, "mortgage_rate"),
        ({"late_fee": -1}, "late_fee"),
        ({"mortgage_rate": "6.5%"}, "must be a number"),
        ({"inflation": None}, "must be a number"),
        ({"salary_low": True}, "must be a number"),
        ({"foreclose_after": 2.5}, "whole number"),
        ({"foreclose_after": 0}, "foreclose_after"),
        ({"unemployment_rate": 1.0}, "unemployment_rate"),
        ({"salary_low": 80_000, "salary_high": 50_000}, "salary_low <= salary_high"),
        ({"market_std": float("nan")}, "market_std must be finite"),
        ({"foreclose_after": float("inf")}, "foreclose_after"),
        ({"unemployment_months": float("nan")}, "unemployment_months"),
    ],
)
def test_bad_parameters_are_user_errors(kwargs, words):
    """Bad values (out of range, not numbers, not whole, not finite) are one-line UserErrors
    naming the problem, not crashes."""
    with pytest.raises(UserError) as info:
        FinanceParams.from_kwargs(kwargs)
    assert words in str(info.value)


def test_whole_floats_are_accepted_for_counts():
    """A JSON 6.0 is a fine unemployment_months."""
    assert FinanceParams.from_kwargs({"unemployment_months": 6.0}).unemployment_months == 6


def test_gymnasium_make_reports_bad_kwargs_as_user_errors():
    with pytest.raises(UserError, match="mortgage_rate"):
        gym.make("finance", mortgage_rate=-1)
    with pytest.raises(UserError, match="nope"):
        gym.make("finance", nope=1)
    env = gym.make("finance", mortgage_rate=0.05)
    assert env.unwrapped.sim.params.mortgage_rate == 0.05


def test_batched_env_rejects_bad_kwargs_and_bad_action_shapes():
    with pytest.raises(UserError, match="nope"):
        FinanceEnvironment(batch_size=2, nope=3)
    env = FinanceEnvironment(batch_size=2, seed=0)
    env.reset()
    with pytest.raises(ValueError, match=r"shape \[2, 4\]"):
        env.step(np.zeros((3, 4), np.float32))


# --- render ------------------------------------------------------------------------------


def test_render_draws_a_frame_that_follows_the_life():
    """rgb_array frames are uint8 (320, 480, 3) and change as the life goes on; without a
    render mode there is no frame."""
    env = FinanceGymEnv(render_mode="rgb_array")
    env.reset(seed=2)
    first = env.render()
    assert first.dtype == np.uint8 and first.shape == (320, 480, 3)
    for _ in range(60):
        env.step(np.float32([0.2, 0.3, 0.3, 0.2]))
    later = env.render()
    assert later.shape == (320, 480, 3)
    assert np.count_nonzero(np.any(first != later, axis=2)) > 500
    assert len(np.unique(later.reshape(-1, 3), axis=0)) > 3  # lines of several colours
    assert FinanceGymEnv().render() is None
    with pytest.raises(UserError, match="rgb_array"):
        FinanceGymEnv(render_mode="human")


def test_numpy_scalars_are_accepted_as_parameters():
    """Python callers of gym.make may pass numpy numbers; they are numbers, not errors."""
    params = FinanceParams.from_kwargs(
        {"foreclose_after": np.int64(3), "inflation": np.float32(0.5)}
    )
    assert params.foreclose_after == 3 and type(params.foreclose_after) is int
    assert params.inflation == pytest.approx(0.5) and type(params.inflation) is float
    with pytest.raises(UserError, match="number"):
        FinanceParams.from_kwargs({"inflation": np.bool_(True)})
