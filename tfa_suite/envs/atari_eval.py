"""Evaluating and filming Atari policies on ale-py's vector env, without TF-Agents.

Training sees clipped rewards and life-loss terminals; evaluation plays whole games with
true scores, under the same frame preprocessing (so the policy's inputs match). Sticky
actions (Machado et al. 2018 use 0.25) are the caller's choice.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np

from tfa_suite.errors import UserError
from tfa_suite.video import mp4_writer

ActionFn = Callable[[np.ndarray], np.ndarray]
# ale-py's vector env options that `--env_kwargs` may set for an Atari game.
ALE_KWARGS = ("full_action_space", "max_num_frames_per_episode", "noop_max", "use_fire_reset")
# Frame skip 4 at 60 emulator frames per second: an agent step is 1/15 s of game time.
VIDEO_FPS = 15


def atari_game(env_id: str) -> str | None:
    """'ALE/Pong-v5' -> 'pong', 'ALE/MsPacman-v5' -> 'ms_pacman'; None for other ids."""
    match = re.fullmatch(r"ALE/([A-Za-z0-9]+)-v5", env_id)
    if not match:
        return None
    return re.sub(r"(?<!^)(?=[A-Z])", "_", match.group(1)).lower()


def ale_kwargs(env_kwargs: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(env_kwargs) - set(ALE_KWARGS))
    if unknown:
        raise UserError(
            f"--env_kwargs {unknown} are not options of an Atari game; allowed: "
            f"{', '.join(ALE_KWARGS)}"
        )
    return dict(env_kwargs)


def make_vector_env(game: str, num_envs: int, env_kwargs: dict[str, Any], **options: Any):  # noqa: ANN201
    try:
        from ale_py.vector_env import AtariVectorEnv
    except ImportError as e:
        raise UserError(f"Atari needs ale-py >= 0.10 with its vector env ({e})") from None
    try:
        return AtariVectorEnv(
            game, num_envs, autoreset_mode="NextStep", **ale_kwargs(env_kwargs), **options
        )
    # ale-py reports an unknown game with an AssertionError (and a UserWarning).
    except (AssertionError, RuntimeError, ValueError, TypeError) as e:
        raise UserError(f"cannot start Atari game {game!r}: {e}") from None


def channels_last(obs: np.ndarray) -> np.ndarray:
    """ale-py's [N, stack, H, W] to the networks' [N, H, W, stack], newest frame last."""
    return np.ascontiguousarray(np.moveaxis(obs, 1, -1))


def _whole_game_options(sticky_actions: float) -> dict[str, Any]:
    """Evaluation plays whole games with true scores: no life-loss ends, no clipping."""
    return dict(
        repeat_action_probability=sticky_actions, episodic_life=False, reward_clipping=False
    )


def run_atari_episodes(
    action_fn: ActionFn,
    game: str,
    env_kwargs: dict[str, Any],
    num_episodes: int,
    seed: int,
    sticky_actions: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Returns (scores, agent steps) of one whole game in each of `num_episodes` emulators."""
    env = make_vector_env(game, num_episodes, env_kwargs, **_whole_game_options(sticky_actions))
    try:
        obs, _ = env.reset(seed=seed)
        returns = np.zeros(num_episodes)
        lengths = np.zeros(num_episodes, dtype=np.int64)
        done = np.zeros(num_episodes, dtype=bool)
        while not done.all():
            actions = np.asarray(action_fn(channels_last(obs)), dtype=np.int64)
            obs, reward, terminated, truncated, _ = env.step(actions)
            live = ~done
            returns += np.where(live, reward, 0.0)
            lengths += live
            done |= terminated | truncated
        return returns, lengths
    finally:
        env.close()


def record_atari_video(
    action_fn: ActionFn,
    game: str,
    env_kwargs: dict[str, Any],
    path: str,
    num_episodes: int,
    seed: int,
    sticky_actions: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Films whole games in colour at the emulator's resolution.

    The policy plays a preprocessed emulator; a second emulator with the same seed gets
    the same actions and renders full-size colour frames. Both are deterministic given
    the seed and the actions, so they stay in lockstep.
    """
    common = _whole_game_options(sticky_actions)
    returns, lengths = [], []
    with mp4_writer(path, VIDEO_FPS) as writer:
        for episode in range(num_episodes):
            policy_env = make_vector_env(game, 1, env_kwargs, **common)
            screen_env = make_vector_env(
                game,
                1,
                env_kwargs,
                img_height=210,
                img_width=160,
                grayscale=False,
                stack_num=1,
                **common,
            )
            try:
                obs, _ = policy_env.reset(seed=seed + episode)
                screen, _ = screen_env.reset(seed=seed + episode)
                total, steps, done = 0.0, 0, False
                while not done:
                    writer.append_data(np.asarray(screen[0, 0], np.uint8))
                    action = np.asarray(action_fn(channels_last(obs)), dtype=np.int64)
                    obs, reward, terminated, truncated, _ = policy_env.step(action)
                    screen, *_ = screen_env.step(action)
                    total += float(reward[0])
                    steps += 1
                    done = bool(terminated[0] or truncated[0])
                returns.append(total)
                lengths.append(steps)
            finally:
                policy_env.close()
                screen_env.close()
    return np.asarray(returns), np.asarray(lengths)
