"""Latency-bound environments: a fixed delay per step, standing in for an expensive simulator.

CartPole steps in microseconds, so collection there is bound by the CPU and more actor
processes than cores cannot collect faster. Many real simulators (physics engines,
robots, games behind a socket) instead spend most of a step waiting. `FixedLatency` models
that: it sleeps `delay_ms` before every step and uses no CPU while it sleeps, which is the
case scale-out on Ray is for (`make bench-scale`, docs/scale-out.md).

- `--env=tfa_suite.envs.latency:DelayedCartPole-v1` is CartPole-v1 (its time limit of
  500 and its solve threshold of 475) with 5 ms per step; `--env_kwargs='{"delay_ms": 2}'`
  changes the delay. gymnasium's `module:EnvId` form imports this module, which registers
  the id.
- `--env=tfa_suite.envs.latency:delayed --env_kwargs='{"id": "Pendulum-v1", "delay_ms": 5}'`
  delays any gymnasium env.

The delay is per env step: a batch of `--num_envs` copies is stepped one after another,
so one batched step takes `num_envs x delay_ms`. Evaluation episodes pay it too.
"""

from __future__ import annotations

import time
from typing import Any

import gymnasium as gym
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

DEFAULT_DELAY_MS = 5.0


class FixedLatency(gym.Wrapper):
    """Sleeps `delay_ms` milliseconds before each step of `env`; otherwise `env` itself."""

    def __init__(self, env: gym.Env, delay_ms: float = DEFAULT_DELAY_MS):
        if not delay_ms >= 0:
            raise ValueError(f"delay_ms must be >= 0, not {delay_ms}")
        super().__init__(env)
        self.delay_seconds = delay_ms / 1000.0

    def step(self, action: Any):  # noqa: ANN201
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        return self.env.step(action)


def delayed(id: str = "CartPole-v1", delay_ms: float = DEFAULT_DELAY_MS, **kwargs: Any) -> gym.Env:  # noqa: A002
    """gymnasium env `id` (made with `kwargs`) with `delay_ms` before every step."""
    return FixedLatency(gym.make(id, **kwargs), delay_ms)


def _delayed_cartpole(delay_ms: float = DEFAULT_DELAY_MS, **kwargs: Any) -> gym.Env:
    return FixedLatency(CartPoleEnv(**kwargs), delay_ms)


gym.register(
    id="DelayedCartPole-v1",
    entry_point=_delayed_cartpole,
    max_episode_steps=500,
    reward_threshold=475.0,
)
