"""The finance simulation as environments: a batched TF-Agents PyEnvironment for training
(`--env=finance`), and a one-life gymnasium env for evaluation, videos and `evaluate.py`.
Both step `FinanceSim` (`tfa_suite.finance.sim`), so life `s` is the same in either.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from tf_agents.environments import py_environment
from tf_agents.specs import array_spec
from tf_agents.trajectories import time_step as ts

from tfa_suite.errors import UserError
from tfa_suite.finance.lives import Lives
from tfa_suite.finance.params import FinanceParams
from tfa_suite.finance.sim import FinanceSim


class FinanceEnvironment(py_environment.PyEnvironment):
    """`batch_size` lives as one batched TF-Agents PyEnvironment.

    The first reset plays lives `seed, seed + 1, ...`; later resets draw new life
    seeds from a generator seeded with `seed`. All lives end together at 80, so the
    base class's auto-reset (which waits for the whole batch) starts the next ones.
    """

    def __init__(self, batch_size: int = 1, seed: int | None = None, **params: Any):
        super().__init__(handle_auto_reset=True)
        finance = FinanceParams.from_kwargs(params)
        self._lives = Lives(finance)
        self._batch_size = int(batch_size)
        self._first_seed = seed
        self._seeds = np.random.default_rng(seed)
        self._flows: dict[str, np.ndarray] = {}
        self._observation_spec = array_spec.BoundedArraySpec(
            (len(finance.observation_names()),), np.float32, 0.0, 1.0, name="observation"
        )
        self._action_spec = array_spec.BoundedArraySpec((4,), np.float32, 0.0, 1.0, name="action")

    @property
    def batched(self) -> bool:
        return True

    @property
    def batch_size(self) -> int:
        return self._batch_size

    @property
    def sim(self) -> FinanceSim:
        return self._lives.sim

    @property
    def lives(self) -> Lives:
        return self._lives

    def observation_spec(self) -> array_spec.BoundedArraySpec:
        return self._observation_spec

    def action_spec(self) -> array_spec.BoundedArraySpec:
        return self._action_spec

    def get_info(self) -> dict[str, np.ndarray]:
        return self._flows

    def _reset(self) -> ts.TimeStep:
        if self._first_seed is not None:
            seeds = self._first_seed + np.arange(self._batch_size)
            self._first_seed = None
        else:
            seeds = self._seeds.integers(0, 2**31 - 1, self._batch_size)
        self._flows = {}
        obs = self._lives.reset(seeds)
        return ts.restart(obs, batch_size=self._batch_size)

    def _step(self, action: np.ndarray) -> ts.TimeStep:
        obs, reward, self._flows = self._lives.step(action)
        reward = reward.astype(np.float32)
        if self._lives.done:
            return ts.termination(obs, reward)
        return ts.transition(obs, reward, discount=np.ones(self._batch_size, np.float32))

    def render(self, mode: str = "rgb_array") -> np.ndarray:
        """The first life of the batch so far, as an RGB chart."""
        return self._lives.chart.render(self._lives.sim)


class FinanceGymEnv(gym.Env):
    """One life as a gymnasium env: the view that evaluation, videos and `evaluate.py` play.

    `reset(seed=s)` plays life `s`, the same life `FinanceEnvironment` plays for that seed;
    an unseeded reset draws the next life seed from the env's own generator.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 24}

    def __init__(self, render_mode: str | None = None, **params: Any):
        if render_mode not in (None, "rgb_array"):
            raise UserError(f"--env=finance renders rgb_array only, not {render_mode!r}")
        self.render_mode = render_mode
        finance = FinanceParams.from_kwargs(params)
        self._lives = Lives(finance)
        self._seeds = np.random.default_rng()
        shape = (len(finance.observation_names()),)
        self.observation_space = gym.spaces.Box(0.0, 1.0, shape, np.float32)
        self.action_space = gym.spaces.Box(0.0, 1.0, (4,), np.float32)

    @property
    def sim(self) -> FinanceSim:
        return self._lives.sim

    def reset(self, *, seed: int | None = None, options: dict | None = None):  # noqa: ANN201
        super().reset(seed=seed)
        if seed is None:
            seed = int(self._seeds.integers(0, 2**31 - 1))
        else:
            self._seeds = np.random.default_rng(seed)
        obs = self._lives.reset(np.array([seed]))[0]
        return obs, {}

    def step(self, action: np.ndarray):  # noqa: ANN201
        actions = np.asarray(action, dtype=np.float64).reshape(1, 4)
        obs, reward, flows = self._lives.step(actions)
        info = {name: float(value[0]) for name, value in flows.items()}
        return obs[0], float(reward[0]), self._lives.done, False, info

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        return self._lives.chart.render(self._lives.sim)
