"""Greedy evaluation on real gymnasium environments, for live agents and saved policies alike.

Only numpy and gymnasium are needed here, so `experiments/evaluate.py` can score a saved
policy in a fresh process without TF-Agents or the training code.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import gymnasium as gym
import numpy as np

from tfa_suite.envs.loading import EnvSpec, make_gym_env

# Maps a batch of observations [N, ...] to a batch of actions [N].
ActionFn = Callable[[np.ndarray], np.ndarray]


@dataclasses.dataclass
class EpisodeStats:
    returns: np.ndarray
    lengths: np.ndarray

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std(self) -> float:
        return float(np.std(self.returns))


def _gym_action(space: gym.Space, action: np.ndarray) -> object:
    if isinstance(space, gym.spaces.Discrete):
        return int(action) + int(space.start)
    return action


def run_episodes(
    action_fn: ActionFn,
    spec: EnvSpec,
    num_episodes: int,
    seed: int,
    max_steps: int = 1_000_000,
) -> EpisodeStats:
    """Plays `num_episodes` episodes, one per env copy, stepped together in lockstep.

    Batching the episodes makes one policy call per time step instead of one per env
    step. Env copy i is reset with seed `seed + i`, so a score is reproducible.
    """
    envs = [make_gym_env(spec) for _ in range(num_episodes)]
    try:
        obs = [env.reset(seed=seed + i)[0] for i, env in enumerate(envs)]
        returns = np.zeros(num_episodes, dtype=np.float64)
        lengths = np.zeros(num_episodes, dtype=np.int64)
        live = np.ones(num_episodes, dtype=bool)
        for _ in range(max_steps):
            if not live.any():
                break
            idx = np.flatnonzero(live)
            actions = np.asarray(action_fn(np.stack([obs[i] for i in idx])))
            for i, action in zip(idx, actions):
                obs[i], reward, terminated, truncated, _ = envs[i].step(
                    _gym_action(envs[i].action_space, action)
                )
                returns[i] += float(reward)
                lengths[i] += 1
                if terminated or truncated:
                    live[i] = False
        return EpisodeStats(returns=returns, lengths=lengths)
    finally:
        for env in envs:
            env.close()


def record_video(
    action_fn: ActionFn,
    spec: EnvSpec,
    path: str,
    num_episodes: int,
    seed: int,
    max_steps: int = 100_000,
) -> EpisodeStats:
    """Writes an MP4 of `num_episodes` greedy episodes, played one after another."""
    import imageio.v2 as imageio

    env = make_gym_env(spec, render=True)
    returns, lengths = [], []
    fps = int(env.metadata.get("render_fps") or 30)
    try:
        # macro_block_size 2: H.264 needs even sizes, and 2 avoids rescaling most frames.
        with imageio.get_writer(path, fps=fps, macro_block_size=2) as writer:
            for episode in range(num_episodes):
                obs, _ = env.reset(seed=seed + episode)
                total, steps = 0.0, 0
                writer.append_data(_frame(env))
                while steps < max_steps:
                    action = np.asarray(action_fn(obs[None]))[0]
                    obs, reward, terminated, truncated, _ = env.step(
                        _gym_action(env.action_space, action)
                    )
                    total += float(reward)
                    steps += 1
                    writer.append_data(_frame(env))
                    if terminated or truncated:
                        break
                returns.append(total)
                lengths.append(steps)
    finally:
        env.close()
    return EpisodeStats(returns=np.asarray(returns), lengths=np.asarray(lengths))


def _frame(env: gym.Env) -> np.ndarray:
    frame = env.render()
    if frame is None:
        raise RuntimeError(f"{env} returned no frame from render(); it has no rgb_array mode")
    return np.asarray(frame, dtype=np.uint8)
