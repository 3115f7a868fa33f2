"""What the Stable-Baselines3 peers share: their common flags, greedy evaluation, the
stop-when-solved callback and the result JSON.

Imported by benchmarks/sb3_cartpole.py, sb3_ppo_cartpole.py and sb3_continuous.py *after*
their TensorFlow guard (it imports SB3, which imports torch.utils.tensorboard), so its
import time is inside their clocks like the rest of SB3's.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from importlib import metadata
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback


def add_flags(
    parser: argparse.ArgumentParser,
    *,
    eval_interval: int,
    target: float,
    max_env_steps: int,
    torch_threads: int,
    max_env_steps_help: str | None = None,
) -> None:
    """The flags every peer takes, with its own defaults; a script adds the rest."""
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval_interval", type=int, default=eval_interval)
    parser.add_argument("--eval_episodes", type=int, default=10)
    parser.add_argument("--eval_seed_offset", type=int, default=1_000_003)
    parser.add_argument("--target", type=float, default=target)
    parser.add_argument("--max_env_steps", type=int, default=max_env_steps, help=max_env_steps_help)
    parser.add_argument("--out", default="", help="also write the result JSON here")
    parser.add_argument(
        "--torch_threads", type=int, default=torch_threads, help="0 keeps torch's default"
    )
    parser.add_argument(
        "--allow_tensorflow",
        action="store_true",
        help="let torch.utils.tensorboard import TensorFlow (slower start)",
    )


def set_torch_threads(args: argparse.Namespace) -> None:
    if args.torch_threads > 0:
        torch.set_num_threads(args.torch_threads)


def greedy_mean_return(model: BaseAlgorithm, env_id: str, episodes: int, seed: int) -> float:
    """Plays `episodes` greedy episodes in lockstep, one batched predict per time step."""
    envs = [gym.make(env_id) for _ in range(episodes)]
    discrete = isinstance(envs[0].action_space, gym.spaces.Discrete)
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
        args: argparse.Namespace,
        *,
        env_id: str,
        process_start: float,
        grad_steps: Callable[[BaseAlgorithm], int] | None = None,
        max_env_steps: int | None = None,
    ) -> None:
        """`args` holds `add_flags`' eval_interval, eval_episodes, seed (+ eval_seed_offset)
        and target."""
        super().__init__()
        self.interval, self.episodes = args.eval_interval, args.eval_episodes
        self.seed, self.target = args.seed + args.eval_seed_offset, args.target
        self.env_id, self.process_start = env_id, process_start
        self.grad_steps = grad_steps or (lambda model: model._n_updates)
        self.max_env_steps = max_env_steps
        self.out_of_budget = False
        self.next_eval = self.interval
        self.evaluations: list[dict[str, float]] = []
        self.solved_at: tuple[int, int, float] | None = None  # env steps, grad steps, s
        self.eval_seconds = 0.0

    def maybe_evaluate(self) -> None:
        steps = self.model.num_timesteps
        if self.solved_at is not None or steps < self.next_eval:
            return
        self.next_eval = (steps // self.interval + 1) * self.interval
        start = time.monotonic()
        mean = greedy_mean_return(self.model, self.env_id, self.episodes, self.seed)
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


def report(
    args: argparse.Namespace,
    model: BaseAlgorithm,
    callback: EvaluateUntilSolved,
    *,
    about: dict[str, Any],
    train_steps: int,
    process_start: float,
    imports_done: float,
) -> None:
    """The result JSON, in tfa_suite's result.json field names after the script's own
    `about` fields: printed (without the evaluations) and, with --out, written."""
    solved = callback.solved_at
    result = {
        **about,
        "seed": args.seed,
        "target_return": args.target,
        "solved": solved is not None,
        "solved_at_env_steps": solved[0] if solved else None,
        "solved_at_train_steps": solved[1] if solved else None,
        "solved_at_seconds": solved[2] if solved else None,
        "env_steps": model.num_timesteps,
        "train_steps": train_steps,
        "final_eval_mean": callback.evaluations[-1]["mean"] if callback.evaluations else None,
        "import_seconds": imports_done - process_start,
        "eval_seconds": callback.eval_seconds,
        "torch_threads": torch.get_num_threads(),
        "tensorflow_imported": sys.modules.get("tensorflow") is not None,
        "versions": {p: metadata.version(p) for p in ("stable-baselines3", "torch", "gymnasium")},
        "evaluations": callback.evaluations,
        "wall_seconds": time.monotonic() - process_start,
    }
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)
    print(json.dumps({k: v for k, v in result.items() if k != "evaluations"}), flush=True)
