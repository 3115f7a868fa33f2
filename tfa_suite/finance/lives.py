"""How the environments present a batch of lives: the decision period and the shadow reward.

`Lives` steps a `FinanceSim` for `decision_months` months per decision (the weights held,
the rewards summed, the video's chart drawn every month) and, with `reward_baseline`,
steps a shadow household beside it: the same lives (the same seeds, so the same salary
paths, job losses, markets and house prices) under a fixed reference rule. The reward is
the household's real net-worth gain minus the shadow's. The shadow's actions are fixed and
nothing the agent does reaches its simulation, so its rewards are the same whatever the
agent does: subtracting them leaves the best policy where it was (for any discount), and
the market noise the two share cancels.
"""

from __future__ import annotations

import numpy as np

from tfa_suite.finance.chart import LifeChart
from tfa_suite.finance.params import BASELINE_RULES, FinanceParams
from tfa_suite.finance.sim import FinanceSim

LEVELS = ("net_worth",)  # flows that are balances: the last month's, not the sum


class Lives:
    def __init__(self, params: FinanceParams):
        self.params = params
        self.sim = FinanceSim(params)
        rule = BASELINE_RULES.get(params.reward_baseline)
        self.shadow = FinanceSim(params) if rule is not None else None
        self._rule = np.asarray(rule, dtype=np.float64) if rule is not None else None
        self.chart = LifeChart()
        self.shadow_rewards: list[np.ndarray] = []  # per month, since the last reset

    def reset(self, seeds: np.ndarray) -> np.ndarray:
        obs = self.sim.reset(seeds)
        if self.shadow is not None:
            self.shadow.reset(seeds)
        self.shadow_rewards = []
        self.chart.start(self.sim)
        return obs

    @property
    def done(self) -> bool:
        return self.sim.done

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """One decision: `decision_months` months with `actions`; returns observations,
        the summed rewards (minus the shadow's) and the months' summed flows."""
        total = np.zeros(self.sim.batch_size)
        summed: dict[str, np.ndarray] = {}
        for _ in range(self.params.decision_months):
            obs, reward, flows = self.sim.step(actions)
            self.chart.record(self.sim)
            if self.shadow is not None:
                rule = np.broadcast_to(self._rule, (self.shadow.batch_size, 4))
                _, shadow_reward, _ = self.shadow.step(rule)
                self.shadow_rewards.append(shadow_reward)
                reward = reward - shadow_reward
            total += reward
            for name, value in flows.items():
                summed[name] = value if name in LEVELS else summed.get(name, 0.0) + value
        return obs, total, summed
