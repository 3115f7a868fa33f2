"""How much the shadow-household reward quiets the finance simulation's returns.

    python benchmarks/finance_variance.py [--lives=1000] [--policy=random|fixed]

Plays the same seeded lives twice, one decision a year, with the plain reward and with the
reward minus the all-tax-advantaged shadow household's (`reward_baseline`), under a random
policy (a fresh uniform weight vector each year, the same draws in both) or the course's
fixed 0.5/0.5/0.5/0.5 rule, and prints the standard deviation of one year's reward and of
a life's return (the sum) under each. The optimum is the same under both rewards (the
shadow's rewards do not depend on the agent: tests/finance/test_lives.py), so a smaller
spread is the same signal in less noise. Pure numpy; a few seconds.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tfa_suite.finance.lives import Lives  # noqa: E402
from tfa_suite.finance.params import FinanceParams  # noqa: E402

FIRST_SEED = 70_000_000  # lives of their own, apart from the report's and its selection's


def play(baseline: str, lives: int, policy: str) -> np.ndarray:
    """[years, lives] rewards of `lives` seeded lives under `policy`."""
    params = FinanceParams.from_kwargs({"decision_months": 12, "reward_baseline": baseline})
    world = Lives(params)
    world.reset(np.arange(FIRST_SEED, FIRST_SEED + lives))
    draws = np.random.default_rng(0)
    rewards = []
    while not world.done:
        if policy == "random":
            actions = draws.uniform(size=(lives, 4))
        else:
            actions = np.full((lives, 4), 0.5)
        _, reward, _ = world.step(actions)
        rewards.append(reward)
    return np.array(rewards)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lives", type=int, default=1000)
    parser.add_argument("--policy", choices=("random", "fixed"), default="random")
    args = parser.parse_args()
    if args.lives < 2:
        sys.exit(f"error: --lives={args.lives}: a spread needs at least 2 lives")
    print(f"{args.lives} lives, one decision a year, {args.policy} policy; rewards in $M")
    print("| reward | std of one year's reward | std of a life's return | mean life return |")
    print("|---|---:|---:|---:|")
    for label, baseline in (("plain", "none"), ("minus the shadow's", "tax_advantaged")):
        rewards = play(baseline, args.lives, args.policy)
        life = rewards.sum(axis=0)
        print(f"| {label} | {rewards.std():.3f} | {life.std(ddof=1):.2f} | {life.mean():.2f} |")


if __name__ == "__main__":
    main()
