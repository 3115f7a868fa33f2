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
from tfa_suite.policy.video import mp4_writer

ActionFn = Callable[[np.ndarray], np.ndarray]
# ale-py's vector env options that `--env_kwargs` may set for an Atari game. Every
# emulator here (training, evaluation, the policy's side of a video) is built from the
# same `env_kwargs`, so the image options give the policy the same inputs in all of them.
ALE_KWARGS = (
    "full_action_space",
    "max_num_frames_per_episode",
    "noop_max",
    "use_fire_reset",
    "img_height",
    "img_width",
    "stack_num",
)
# Options of the frames the policy sees, checked here: ale-py 0.12.1 hangs in reset on
# a 0 and fails with a C++ message on a negative. img_height=210, img_width=160 is the
# emulator's own screen: ale-py then hands over its grayscale frame unchanged (no
# resampling; tests/test_atari_env.py checks it pixel for pixel), while other sizes are
# interpolated. The stack is padded with all-zero frames after a reset.
IMAGE_KWARGS = ("img_height", "img_width", "stack_num")
# The suite's own Atari option: "actions": [2, 3] lets the agent choose among those env
# actions only (agent action i plays env action actions[i]), e.g. Pong's up and down.
ACTIONS_KWARG = "actions"
# Frame skip 4 at 60 emulator frames per second: an agent step is 1/15 s of game time.
VIDEO_FPS = 15


def atari_game(env_id: str) -> str | None:
    """'ALE/Pong-v5' -> 'pong', 'ALE/MsPacman-v5' -> 'ms_pacman'; None for other ids."""
    match = re.fullmatch(r"ALE/([A-Za-z0-9]+)-v5", env_id)
    if not match:
        return None
    return re.sub(r"(?<!^)(?=[A-Z])", "_", match.group(1)).lower()


def ale_kwargs(env_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The part of `env_kwargs` that goes to ale-py's vector env, checked."""
    unknown = sorted(set(env_kwargs) - set(ALE_KWARGS) - {ACTIONS_KWARG})
    if unknown:
        raise UserError(
            f"--env_kwargs {unknown} are not options of an Atari game; allowed: "
            f"{', '.join((*ALE_KWARGS, ACTIONS_KWARG))}"
        )
    for key in IMAGE_KWARGS:
        value = env_kwargs.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UserError(f'--env_kwargs "{key}" must be a positive integer, got {value!r}')
    return {k: v for k, v in env_kwargs.items() if k != ACTIONS_KWARG}


def action_table(env_kwargs: dict[str, Any], game: str, num_game_actions: int) -> np.ndarray:
    """The env action played for each agent action, as an int64 lookup table.

    Without `"actions"` the agent chooses among all `num_game_actions` of the env's
    action set (ale-py's minimal set, or all 18 with `full_action_space`); with it, agent
    action i plays env action `actions[i]` of that set.
    """
    if ACTIONS_KWARG not in env_kwargs:
        return np.arange(num_game_actions, dtype=np.int64)
    actions = env_kwargs[ACTIONS_KWARG]
    if not isinstance(actions, (list, tuple)) or not all(
        isinstance(a, int) and not isinstance(a, bool) for a in actions
    ):
        raise UserError(
            f'--env_kwargs "actions" must be a list of the game\'s action numbers, such as '
            f"[2, 3], got {actions!r}"
        )
    actions = list(actions)
    if not actions:
        raise UserError(
            '--env_kwargs "actions" is empty; list the game actions the agent chooses '
            "among, such as [2, 3]"
        )
    repeated = sorted({a for a in actions if actions.count(a) > 1})
    if repeated:
        raise UserError(
            f'--env_kwargs "actions" {actions} repeats {repeated}; list each game action once'
        )
    outside = [a for a in actions if not 0 <= a < num_game_actions]
    if outside:
        raise UserError(
            f'--env_kwargs "actions" {actions}: {outside} outside {game}\'s action set, '
            f"0..{num_game_actions - 1}"
        )
    return np.asarray(actions, dtype=np.int64)


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


def open_game(
    game: str, num_envs: int, env_kwargs: dict[str, Any], **options: Any
) -> tuple[Any, np.ndarray]:
    """`make_vector_env` and the env's `action_table`: step it with `table[agent_actions]`."""
    env = make_vector_env(game, num_envs, env_kwargs, **options)
    try:
        return env, action_table(env_kwargs, game, int(env.single_action_space.n))
    except BaseException:
        env.close()
        raise


def channels_last(obs: np.ndarray) -> np.ndarray:
    """ale-py's [N, stack, H, W] to the networks' [N, H, W, stack], newest frame last.

    One frame plane at a time into a fresh array: `np.ascontiguousarray(np.moveaxis(obs,
    1, -1))` gathers byte by byte and took 2.1 ms of each 8-env step of Pong's 210x160x2
    frames (a fifth of the training loop's step); this copy gives the same array about 8x
    faster.
    """
    n, stack, height, width = obs.shape
    out = np.empty((n, height, width, stack), dtype=obs.dtype)
    for i in range(stack):
        out[..., i] = obs[:, i]
    return out


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
    env, table = open_game(game, num_episodes, env_kwargs, **_whole_game_options(sticky_actions))
    try:
        obs, _ = env.reset(seed=seed)
        returns = np.zeros(num_episodes)
        lengths = np.zeros(num_episodes, dtype=np.int64)
        done = np.zeros(num_episodes, dtype=bool)
        while not done.all():
            actions = np.asarray(action_fn(channels_last(obs)), dtype=np.int64)
            obs, reward, terminated, truncated, _ = env.step(table[actions])
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
    the seed and the actions, so they stay in lockstep. Both play `env_kwargs`' actions;
    only the screen's image options are its own.
    """
    common = _whole_game_options(sticky_actions)
    screen_kwargs = {k: v for k, v in env_kwargs.items() if k not in IMAGE_KWARGS}
    returns, lengths = [], []
    with mp4_writer(path, VIDEO_FPS) as writer:
        for episode in range(num_episodes):
            policy_env, table = open_game(game, 1, env_kwargs, **common)
            screen_env = make_vector_env(
                game,
                1,
                screen_kwargs,
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
                    action = table[np.asarray(action_fn(channels_last(obs)), dtype=np.int64)]
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
