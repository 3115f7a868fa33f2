"""What the Stable-Baselines3 peers share: greedy evaluation and the stop-when-solved callback.

Imported by benchmarks/sb3_cartpole.py, sb3_ppo_cartpole.py and sb3_continuous.py *after*
their TensorFlow guard (it imports SB3, which imports torch.utils.tensorboard), so its
import time is inside their clocks like the rest of SB3's.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback


def greedy_mean_return(
    model: BaseAlgorithm, env_id: str, episodes: int, seed: int, discrete: bool
) -> float:
    """Plays `episodes` greedy episodes in lockstep, one batched predict per time step."""
    envs = [gym.make(env_id) for _ in range(episodes)]
    obs = [env.reset(seed=seed + i)[0] for i, env in enumerate(envs)]
    returns = np.zeros(episodes)
    live = np.ones(episodes, dtype=bool)
    while live.any():
        idx = np.flatnonzero(live)
        actions, _ = model.predict(np.stack([obs[i] for i in idx]), deterministic=True)
        for i, action in zip(idx, actions, strict=True):
            obs[i], reward, terminated, truncated, _ = envs[i].step(
                int(action) if discrete else action
            )
            returns[i] += float(reward)
            live[i] = not (terminated or truncated)
    for env in envs:
        env.close()
    return float(returns.mean())


class EvaluateUntilSolved(BaseCallback):
    """Evaluates every `interval` env steps; stops once the target is met, or (with
    `max_env_steps`) once that budget is spent.

    It evaluates at the start of each rollout, right after the previous rollout's gradient
    steps, so it scores the trained policy; the budget is checked there too, so the last
    rollout is trained before the run stops. `grad_steps(model)` counts gradient steps
    (default SB3's `_n_updates`); `process_start` is the caller's clock origin.
    """

    def __init__(
        self,
        interval: int,
        episodes: int,
        seed: int,
        target: float,
        *,
        env_id: str,
        discrete: bool,
        process_start: float,
        grad_steps: Callable[[BaseAlgorithm], int] | None = None,
        max_env_steps: int | None = None,
    ) -> None:
        super().__init__()
        self.interval, self.episodes, self.seed, self.target = interval, episodes, seed, target
        self.env_id, self.discrete, self.process_start = env_id, discrete, process_start
        self.grad_steps = grad_steps or (lambda model: model._n_updates)
        self.max_env_steps = max_env_steps
        self.out_of_budget = False
        self.next_eval = interval
        self.evaluations: list[dict[str, float]] = []
        self.solved_at: tuple[int, int, float] | None = None  # env steps, grad steps, s
        self.eval_seconds = 0.0

    def maybe_evaluate(self) -> None:
        steps = self.model.num_timesteps
        if self.solved_at is not None or steps < self.next_eval:
            return
        self.next_eval = (steps // self.interval + 1) * self.interval
        start = time.monotonic()
        mean = greedy_mean_return(self.model, self.env_id, self.episodes, self.seed, self.discrete)
        self.eval_seconds += time.monotonic() - start
        seconds = time.monotonic() - self.process_start
        self.evaluations.append({"env_steps": steps, "mean": mean, "wall_seconds": seconds})
        print(f"eval @ {steps:,} env steps ({seconds:.1f} s): return {mean:.1f}", flush=True)
        if mean >= self.target:
            self.solved_at = (steps, self.grad_steps(self.model), seconds)

    def _on_rollout_start(self) -> None:
        self.maybe_evaluate()
        if self.max_env_steps is not None:
            self.out_of_budget = self.model.num_timesteps >= self.max_env_steps

    def _on_step(self) -> bool:
        return self.solved_at is None and not self.out_of_budget
