"""How the finance environments present a life: the shadow reward, the decision period,
the liquidity observations and the weight floor. None of them may change the life."""

from __future__ import annotations

import tfa_suite  # noqa: F401  -- first: it selects Keras 2 before TensorFlow loads

# isort: split

from pathlib import Path

import numpy as np
import pytest

from tfa_suite.errors import UserError
from tfa_suite.finance.env import FinanceEnvironment, FinanceGymEnv
from tfa_suite.finance.lives import Lives
from tfa_suite.finance.params import MONTHS, FinanceParams, normalize_weights
from tfa_suite.finance.report import keep_liquid, simulate
from tfa_suite.finance.sim import FinanceSim

SEEDS = np.arange(7, 13)
TAX_ADVANTAGED = np.array([0.0, 1.0, 0.0, 0.0])


def play(lives: Lives, actions_of) -> tuple[list[np.ndarray], list[np.ndarray]]:  # noqa: ANN001
    """Rewards per decision, and the shadow's per month, for a whole batch of lives."""
    lives.reset(SEEDS)
    rewards, t = [], 0
    while not lives.done:
        _, reward, _ = lives.step(actions_of(t))
        rewards.append(reward)
        t += 1
    return rewards, list(lives.shadow_rewards)


def plain_rewards(actions_of, months: int = 1) -> list[np.ndarray]:  # noqa: ANN001
    """The same lives' own rewards, from a bare FinanceSim, summed per decision."""
    sim = FinanceSim(FinanceParams())
    sim.reset(SEEDS)
    out, t = [], 0
    while not sim.done:
        total = 0.0
        for _ in range(months):
            _, reward, _ = sim.step(actions_of(t))
            total = total + reward
        out.append(total)
        t += 1
    return out


def random_actions(seed: int):  # noqa: ANN201
    rng = np.random.default_rng(seed)
    table = rng.random((MONTHS, len(SEEDS), 4))
    return lambda t: table[t]


def test_the_shadows_rewards_do_not_depend_on_the_agents_actions():
    params = FinanceParams(reward_baseline="tax_advantaged")
    first = play(Lives(params), random_actions(0))[1]
    second = play(Lives(params), lambda t: np.tile([0.0, 0.0, 0.0, 1.0], (len(SEEDS), 1)))[1]
    assert len(first) == MONTHS
    np.testing.assert_array_equal(np.stack(first), np.stack(second))
    # ... and they are the rule's own rewards on the same lives.
    rule = plain_rewards(lambda t: np.tile(TAX_ADVANTAGED, (len(SEEDS), 1)))
    np.testing.assert_array_equal(np.stack(first), np.stack(rule))


def test_the_reward_is_the_households_minus_the_shadows():
    actions = random_actions(1)
    shadowed, shadow = play(Lives(FinanceParams(reward_baseline="tax_advantaged")), actions)
    own = plain_rewards(actions)
    np.testing.assert_allclose(np.stack(shadowed), np.stack(own) - np.stack(shadow), atol=1e-12)
    # The rule itself earns exactly zero against its own shadow.
    rule, _ = play(
        Lives(FinanceParams(reward_baseline="tax_advantaged")),
        lambda t: np.tile(TAX_ADVANTAGED, (len(SEEDS), 1)),
    )
    assert np.all(np.stack(rule) == 0.0)


def test_without_a_baseline_the_reward_is_the_plain_one():
    actions = random_actions(2)
    rewards, shadow = play(Lives(FinanceParams()), actions)
    assert shadow == []
    np.testing.assert_array_equal(np.stack(rewards), np.stack(plain_rewards(actions)))


def test_a_yearly_decision_holds_the_weights_and_sums_twelve_months():
    actions = random_actions(3)
    rewards, _ = play(Lives(FinanceParams(decision_months=12)), actions)
    assert len(rewards) == MONTHS // 12 == 62
    # The bare simulation, given decision t's weights for each of its twelve months.
    expected = plain_rewards(lambda month: actions(month // 12), months=1)
    yearly = np.stack(expected).reshape(62, 12, len(SEEDS)).sum(axis=1)
    np.testing.assert_allclose(np.stack(rewards), yearly, atol=1e-12)


def test_the_batched_and_gym_views_take_yearly_steps_with_the_shadow():
    kwargs = dict(decision_months=12, reward_baseline="tax_advantaged")
    env = FinanceEnvironment(batch_size=2, seed=5, **kwargs)
    env.reset()
    steps = 0
    while True:
        step = env.step(np.tile([0.2, 0.5, 0.2, 0.1], (2, 1)).astype(np.float32))
        steps += 1
        if step.is_last().all():
            break
    assert steps == 62
    gym_env = FinanceGymEnv(**kwargs)
    gym_env.reset(seed=5)
    total, done, n = 0.0, False, 0
    while not done:
        _, reward, done, _, _ = gym_env.step(np.array([0.2, 0.5, 0.2, 0.1], np.float32))
        total += reward
        n += 1
    assert n == 62 and total < 0  # luxury and the rest cost against the rule


def test_liquidity_observations_count_months_of_costs():
    sim = FinanceSim(FinanceParams(liquidity_features=True))
    sim.reset(SEEDS)
    for _ in range(30):
        sim.step(np.tile([0.0, 0.5, 0.5, 0.0], (len(SEEDS), 1)))
    obs = sim.observation()
    assert obs.shape == (len(SEEDS), 11)
    costs = sim.monthly_costs()
    taxable = sim.taxable / costs
    both = (sim.taxable + sim.tax_advantaged) / costs
    np.testing.assert_allclose(obs[:, 9], taxable / (taxable + 12), rtol=1e-5)
    np.testing.assert_allclose(obs[:, 10], both / (both + 12), rtol=1e-5)
    assert FinanceEnvironment(liquidity_features=True).observation_spec().shape == (11,)
    assert FinanceEnvironment().observation_spec().shape == (9,)


def test_weights_at_or_below_the_floor_count_as_zero():
    shares = normalize_weights(np.array([[0.04, 1.0, 0.05, 0.02]]), floor=0.05)
    np.testing.assert_array_equal(shares, [[0.0, 1.0, 0.0, 0.0]])
    shares = normalize_weights(np.array([[0.04, 1.0, 0.05, 0.02]]))
    np.testing.assert_allclose(shares.sum(), 1.0)
    assert shares[0, 3] > 0


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"decision_months": 5}, "decision_months must divide"),
        ({"reward_baseline": "luxury"}, "reward_baseline must be none or tax_advantaged"),
        ({"reward_baseline": 1}, "reward_baseline must be a string"),
        ({"liquidity_features": 1}, "liquidity_features must be true or false"),
        ({"weight_floor": 1.0}, "weight_floor must be in [0, 1)"),
    ],
)
def test_bad_presentation_settings_are_one_line_errors(kwargs, words):
    with pytest.raises(UserError, match=words.replace("[", r"\[").replace(")", r"\)")):
        FinanceParams.from_kwargs(kwargs)


def test_keep_liquid_fills_the_taxable_buffer_first():
    params = FinanceParams()
    seeds = np.arange(20)
    outcome = simulate(keep_liquid(6), params, seeds, "six months")
    # Early on everything goes to the taxable account; later, once the buffer is full, to
    # the tax-advantaged one.
    assert outcome.shares[0, 2] == 1.0
    assert outcome.shares[-1, 1] > 0.5
    none = simulate(keep_liquid(0), params, seeds, "none")
    assert np.all(none.shares[:, 1] == 1.0)


def test_a_learned_policy_in_the_report_decides_once_per_period():
    calls = []

    def policy(obs: np.ndarray, sim: FinanceSim) -> np.ndarray:
        calls.append(sim.month)
        return np.tile([0.0, 1.0, 0.0, 0.0], (len(obs), 1))

    simulate(policy, FinanceParams(decision_months=12), np.arange(3), "yearly", every=12)
    assert calls == list(range(0, MONTHS, 12))


def test_the_variance_script_shows_the_shadow_quieting_the_returns():
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "finance_variance.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--lives=200"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    rows = [
        ln.split("|")
        for ln in proc.stdout.splitlines()
        if ln.startswith("| plain") or ln.startswith("| minus")
    ]
    (plain, shadow) = [(float(r[2]), float(r[3])) for r in rows]
    assert shadow[0] < plain[0] and shadow[1] < plain[1]
    bad = subprocess.run([sys.executable, str(script), "--lives=1"], capture_output=True, text=True)
    assert bad.returncode != 0 and bad.stderr.strip().splitlines() == [
        "error: --lives=1: a spread needs at least 2 lives"
    ]
