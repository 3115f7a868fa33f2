"""Tiny gymnasium environments for the tests, importable as `tests.envs_for_tests:<Name>`."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class CountdownEnv(gym.Env):
    """A deterministic episode that terminates after exactly `length` steps.

    The observation is [steps left, last action received]; the reward of step t (1-based)
    is `t * reward_scale`. Every action the env receives is kept in `actions_received`,
    so tests can check what the adapter really passed in.
    """

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(
        self,
        length: int = 3,
        reward_scale: float = 1.0,
        num_actions: int = 2,
        action_start: int = 0,
        render_mode: str | None = None,
    ):
        self.length = length
        self.reward_scale = reward_scale
        self.render_mode = render_mode
        self.observation_space = spaces.Box(low=-100.0, high=100.0, shape=(2,), dtype=np.float32)
        self.action_space = spaces.Discrete(num_actions, start=action_start)
        self.actions_received: list[Any] = []
        self.resets = 0
        self._t = 0

    def _obs(self, last_action: int) -> np.ndarray:
        return np.array([self.length - self._t, last_action], dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._t = 0
        self.resets += 1
        return self._obs(0), {}

    def step(self, action):
        self.actions_received.append(action)
        self._t += 1
        terminated = self._t >= self.length
        return self._obs(action), float(self._t) * self.reward_scale, terminated, False, {}

    def render(self):
        return np.full((4, 6, 3), self._t, dtype=np.uint8)


class NeverEndingEnv(gym.Env):
    """Never terminates: only a TimeLimit ends its episodes. Reward 1 per step."""

    def __init__(self):
        self.observation_space = spaces.Box(low=0.0, high=np.inf, shape=(1,), dtype=np.float32)
        self.action_space = spaces.Discrete(2)
        self._t = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._t = 0
        return np.array([0.0], dtype=np.float32), {}

    def step(self, action):
        self._t += 1
        return np.array([self._t], dtype=np.float32), 1.0, False, False, {}


class SelfTruncatingEnv(NeverEndingEnv):
    """Truncates its own episodes every 10 steps, with no TimeLimit and no registration."""

    def step(self, action):
        obs, reward, terminated, _, info = super().step(action)
        return obs, reward, terminated, self._t % 10 == 0, info


def make_truncated_env(limit: int = 4) -> gym.Env:
    """A factory function (not a class): NeverEndingEnv cut off by a TimeLimit."""
    return gym.wrappers.TimeLimit(NeverEndingEnv(), max_episode_steps=limit)


class DictObsEnv(gym.Env):
    """A Dict observation space, which tfa_suite does not map."""

    def __init__(self):
        self.observation_space = spaces.Dict(
            {"pos": spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32), "flag": spaces.Discrete(2)}
        )
        self.action_space = spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, False, False, {}


class TupleActionEnv(gym.Env):
    """A Tuple action space, which tfa_suite does not map."""

    def __init__(self):
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.action_space = spaces.Tuple((spaces.Discrete(2), spaces.Discrete(3)))

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        return np.zeros(2, dtype=np.float32), {}

    def step(self, action):
        return np.zeros(2, dtype=np.float32), 0.0, False, False, {}


class OffsetObsEnv(gym.Env):
    """A Discrete(4, start=10) observation space: observations are 10..13."""

    def __init__(self):
        self.observation_space = spaces.Discrete(4, start=10)
        self.action_space = spaces.Discrete(2)
        self._state = 10

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._state = 10
        return self._state, {}

    def step(self, action):
        self._state = 10 + (self._state - 10 + 1) % 4
        return self._state, 0.0, False, False, {}


class MultiBinaryObsEnv(gym.Env):
    """A MultiBinary observation (int32 spec), which the Q-network casts to float."""

    def __init__(self):
        self.observation_space = spaces.MultiBinary(5)
        self.action_space = spaces.Discrete(3)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, False, False, {}


class Float64ActionEnv(gym.Env):
    """Continuous float64 Box actions in [-0.1, 0.1]^2, as some envs declare them.

    The observation is a float32 Box (3,), the reward -sum(a^2), and an episode is cut
    (truncated) after `max_steps` steps. Every action received is kept, with its dtype, in
    `actions_received`. With `strict=True` the env raises on an action that is not float64
    or lies outside the bounds, so a test can drive it through code that hides the env.
    """

    def __init__(self, max_steps: int = 20, strict: bool = False):
        self.max_steps = max_steps
        self.strict = strict
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(3,), dtype=np.float32)
        self.action_space = spaces.Box(-0.1, 0.1, shape=(2,), dtype=np.float64)
        self.actions_received: list[np.ndarray] = []
        self._t = 0

    def _obs(self) -> np.ndarray:
        return self.np_random.uniform(-1.0, 1.0, size=3).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._t = 0
        return self._obs(), {}

    def step(self, action):
        action = np.array(action, copy=True)  # keeps the dtype it arrived in
        self.actions_received.append(action)
        if self.strict:
            space = self.action_space
            if action.dtype != np.float64 or not (
                np.all(action >= space.low) and np.all(action <= space.high)
            ):
                raise ValueError(f"action {action!r} ({action.dtype}) is not in {space}")
        self._t += 1
        reward = -float(np.sum(np.square(action)))
        return self._obs(), reward, False, self._t >= self.max_steps, {}


def not_an_env(**kwargs: Any) -> dict:
    """A factory that returns something other than a gymnasium.Env."""
    return dict(kwargs)


NOT_CALLABLE = 42

# gymnasium's own "module:EnvId" form: importing this module registers the id.
COUNTDOWN_ID = "TfaSuiteCountdown-v0"
COUNTDOWN_REWARD_THRESHOLD = 6.0
if COUNTDOWN_ID not in gym.registry:
    gym.register(
        COUNTDOWN_ID,
        entry_point=CountdownEnv,
        kwargs={"length": 3},
        reward_threshold=COUNTDOWN_REWARD_THRESHOLD,
    )
