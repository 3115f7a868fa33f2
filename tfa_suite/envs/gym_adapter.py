"""gymnasium environments as TF-Agents PyEnvironments.

TF-Agents 0.19 ships only a wrapper for the legacy `gym` API (4-tuple `step`, one `done`
flag), which cannot tell a time-limit truncation from a real termination. This adapter
speaks gymnasium's 5-tuple API and keeps the two apart: termination ends the bootstrap
(discount 0), truncation does not (discount 1), so the TD target stays unbiased.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from tf_agents.environments import batched_py_environment, py_environment, tf_py_environment
from tf_agents.specs import array_spec
from tf_agents.trajectories import time_step as ts

from tfa_suite.envs.loading import EnvSpec, box_action, make_gym_env
from tfa_suite.errors import UnsupportedSpaceError


def space_to_spec(space: gym.Space, name: str) -> array_spec.BoundedArraySpec:
    """Maps a gymnasium space to the equivalent TF-Agents spec, keeping dtypes exact.

    Discrete(n, start) becomes an int64 scalar in [start, start + n - 1]. Actions are then
    shifted to [0, n - 1] (`action_space_to_spec`): TF-Agents' Q-networks require a zero
    minimum, so the adapter adds `start` back when it steps. Observations keep their own
    values, so a policy (and its export) acts on exactly what the env returns.
    """
    if isinstance(space, gym.spaces.Box):
        return array_spec.BoundedArraySpec(
            space.shape, space.dtype, minimum=space.low, maximum=space.high, name=name
        )
    if isinstance(space, gym.spaces.Discrete):
        start = int(space.start) if name == "observation" else 0
        return array_spec.BoundedArraySpec(
            (), np.int64, minimum=start, maximum=start + int(space.n) - 1, name=name
        )
    if isinstance(space, gym.spaces.MultiBinary):
        # int32, not gymnasium's int8: TF-Agents samples specs with tf.random.uniform when it
        # builds networks, and that has no int8 kernel.
        return array_spec.BoundedArraySpec(space.shape, np.int32, minimum=0, maximum=1, name=name)
    if isinstance(space, gym.spaces.MultiDiscrete) and np.all(space.start == 0):
        return array_spec.BoundedArraySpec(
            space.shape, np.int64, minimum=0, maximum=space.nvec - 1, name=name
        )
    raise UnsupportedSpaceError(
        f"unsupported {name} space {space}: tfa_suite maps Box, Discrete, MultiBinary and "
        "MultiDiscrete (start 0) spaces"
    )


def action_space_to_spec(space: gym.Space) -> array_spec.BoundedArraySpec:
    """As `space_to_spec`, but float64 Box actions are exposed as float32.

    TF-Agents' continuous projection networks (SAC's, PPO's) refuse float64 action specs
    ("must match the sample_spec.dtype"); the adapter casts actions back when it steps.
    """
    spec = space_to_spec(space, "action")
    if isinstance(space, gym.spaces.Box) and space.dtype == np.float64:
        return array_spec.BoundedArraySpec(
            space.shape,
            np.float32,
            minimum=space.low.astype(np.float32),
            maximum=space.high.astype(np.float32),
            name="action",
        )
    return spec


def _discrete_start(space: gym.Space) -> int:
    return int(space.start) if isinstance(space, gym.spaces.Discrete) else 0


class GymnasiumEnvironment(py_environment.PyEnvironment):
    """One gymnasium environment behind the TF-Agents PyEnvironment interface.

    Seeding: the first reset uses `seed`; later resets continue the environment's own RNG,
    so a whole run is reproducible from one seed without repeating episodes.
    Auto-reset: `handle_auto_reset=True` makes the step after a LAST time step a reset,
    which TF-Agents drivers rely on (without it, stepping past the end loops forever).
    """

    def __init__(self, env: gym.Env, seed: int | None = None):
        super().__init__(handle_auto_reset=True)
        self._env = env
        self._observation_spec = space_to_spec(env.observation_space, "observation")
        self._action_spec = action_space_to_spec(env.action_space)
        self._action_offset = _discrete_start(env.action_space)
        self._next_seed = seed
        if seed is not None:
            env.action_space.seed(seed)

    @property
    def gym_env(self) -> gym.Env:
        return self._env

    def observation_spec(self) -> array_spec.BoundedArraySpec:
        return self._observation_spec

    def action_spec(self) -> array_spec.BoundedArraySpec:
        return self._action_spec

    def _observation(self, obs: Any) -> np.ndarray:
        return np.asarray(obs, dtype=self._observation_spec.dtype)

    def _reset(self) -> ts.TimeStep:
        seed, self._next_seed = self._next_seed, None
        obs, _ = self._env.reset(seed=seed)
        return ts.restart(self._observation(obs))

    def _step(self, action: np.ndarray) -> ts.TimeStep:
        if self._action_offset:
            action = action + self._action_offset
        if isinstance(self._env.action_space, gym.spaces.Discrete):
            action = int(action)
        elif isinstance(self._env.action_space, gym.spaces.Box):
            action = box_action(self._env.action_space, action)
        obs, reward, terminated, truncated, _ = self._env.step(action)
        obs = self._observation(obs)
        reward = np.asarray(reward, dtype=np.float32)
        if terminated:
            return ts.termination(obs, reward)
        if truncated:
            # Truncation keeps discount 1: the episode did not end, time ran out.
            return ts.truncation(obs, reward, discount=np.float32(1.0))
        return ts.transition(obs, reward, discount=np.float32(1.0))

    def render(self, mode: str = "rgb_array") -> np.ndarray | None:
        return self._env.render()

    def close(self) -> None:
        self._env.close()


def make_py_env(spec: EnvSpec, seed: int | None, render: bool = False) -> GymnasiumEnvironment:
    """One environment as a PyEnvironment."""
    return GymnasiumEnvironment(make_gym_env(spec, render=render), seed=seed)


def make_batched_py_env(
    spec: EnvSpec, num_envs: int, seed: int | None
) -> batched_py_environment.BatchedPyEnvironment:
    """`num_envs` copies stepped together; copy i is seeded with `seed + i`.

    Stepping is sequential in this process: for light environments such as the classic
    control tasks, thread hand-off costs more than the step itself.
    """
    envs = [
        make_py_env(spec, None if seed is None else seed + i, render=False) for i in range(num_envs)
    ]
    return batched_py_environment.BatchedPyEnvironment(envs, multithreading=False)


def make_tf_env(
    spec: EnvSpec, num_envs: int, seed: int | None
) -> tf_py_environment.TFPyEnvironment:
    """The batched environment as a TFEnvironment, for drivers inside `tf.function`."""
    return tf_py_environment.TFPyEnvironment(make_batched_py_env(spec, num_envs, seed))
