"""Greedy evaluation on real gymnasium environments, for live agents and saved policies alike.

Only numpy and gymnasium are needed here, so `experiments/evaluate.py` can score a saved
policy in a fresh process without TF-Agents or the training code.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import gymnasium as gym
import numpy as np

from tfa_suite.envs.atari_eval import atari_game, record_atari_video, run_atari_episodes
from tfa_suite.envs.loading import EnvSpec, box_action, make_gym_env
from tfa_suite.errors import EnvironmentFailed
from tfa_suite.policy.video import mp4_writer

# Maps a batch of observations [N, ...] to a batch of actions [N].
ActionFn = Callable[[np.ndarray], np.ndarray]


class VideoUnavailable(Exception):
    """The environment cannot produce rgb_array frames."""


def _env_call(fn, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
    """Calls into the user's environment; its exceptions become a one-line user error."""
    try:
        return fn(*args, **kwargs)
    except Exception as e:  # noqa: BLE001  whatever the env raises is the env's to explain
        raise EnvironmentFailed(
            f"the environment failed during evaluation: {type(e).__name__}: {e}"
        ) from None


@dataclasses.dataclass
class EpisodeStats:
    returns: np.ndarray
    lengths: np.ndarray
    # Episodes stopped at the step cap before they ended, scored on their partial return.
    cut: int = 0

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std(self) -> float:
        return float(np.std(self.returns))


def _gym_action(space: gym.Space, action: np.ndarray) -> object:
    if isinstance(space, gym.spaces.Discrete):
        return int(action) + int(space.start)
    if isinstance(space, gym.spaces.Box):
        return box_action(space, action)
    return action


def run_episodes(
    action_fn: ActionFn,
    spec: EnvSpec,
    num_episodes: int,
    seed: int,
    max_steps: int = 27_000,
    sticky_actions: float = 0.0,
) -> EpisodeStats:
    """Plays `num_episodes` episodes, one per env copy, stepped together in lockstep.

    An episode still running after `max_steps` steps is cut there and counted in
    `EpisodeStats.cut`: an env without a time limit would otherwise run for ever.

    Batching the episodes makes one policy call per time step instead of one per env
    step. Env copy i is reset with seed `seed + i`, so a score is reproducible. Atari
    games (`ALE/<Game>-v5`) play whole games on ale-py's emulators, with
    `sticky_actions` as the repeat-action probability.
    """
    game = atari_game(spec.env)
    if game is not None:
        returns, lengths = run_atari_episodes(
            action_fn, game, spec.kwargs, num_episodes, seed, sticky_actions
        )
        return EpisodeStats(returns=returns, lengths=lengths)
    envs = [make_gym_env(spec) for _ in range(num_episodes)]
    try:
        obs = [_env_call(env.reset, seed=seed + i)[0] for i, env in enumerate(envs)]
        returns = np.zeros(num_episodes, dtype=np.float64)
        lengths = np.zeros(num_episodes, dtype=np.int64)
        live = np.ones(num_episodes, dtype=bool)
        for _ in range(max_steps):
            if not live.any():
                break
            idx = np.flatnonzero(live)
            actions = np.asarray(action_fn(np.stack([obs[i] for i in idx])))
            for i, action in zip(idx, actions):
                obs[i], reward, terminated, truncated, _ = _env_call(
                    envs[i].step, _gym_action(envs[i].action_space, action)
                )
                returns[i] += float(reward)
                lengths[i] += 1
                if terminated or truncated:
                    live[i] = False
        return EpisodeStats(returns=returns, lengths=lengths, cut=int(live.sum()))
    finally:
        for env in envs:
            env.close()


def record_video(
    action_fn: ActionFn,
    spec: EnvSpec,
    path: str,
    num_episodes: int,
    seed: int,
    max_steps: int = 27_000,
    sticky_actions: float = 0.0,
) -> EpisodeStats:
    """Writes an MP4 of `num_episodes` greedy episodes, played one after another."""
    game = atari_game(spec.env)
    if game is not None:
        returns, lengths = record_atari_video(
            action_fn, game, spec.kwargs, path, num_episodes, seed, sticky_actions
        )
        return EpisodeStats(returns=returns, lengths=lengths)

    env = make_gym_env(spec, render=True)
    returns, lengths = [], []
    fps = int(env.metadata.get("render_fps") or 30)
    try:
        _env_call(env.reset, seed=seed)
        _frame(env)  # fails early, before a file exists, if the env cannot render
        with mp4_writer(path, fps) as writer:
            for episode in range(num_episodes):
                obs, _ = _env_call(env.reset, seed=seed + episode)
                total, steps = 0.0, 0
                writer.append_data(_frame(env))
                while steps < max_steps:
                    action = np.asarray(action_fn(np.asarray(obs)[None]))[0]
                    obs, reward, terminated, truncated, _ = _env_call(
                        env.step, _gym_action(env.action_space, action)
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
    try:
        frame = env.render()
    except NotImplementedError:
        frame = None
    if frame is None or np.ndim(frame) != 3:
        raise VideoUnavailable(f"{env} does not render rgb_array frames")
    return np.asarray(frame, dtype=np.uint8)
