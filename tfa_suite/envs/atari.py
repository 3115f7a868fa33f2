"""Atari games as one batched TF-Agents PyEnvironment, stepped by ale-py's vector env.

ale-py's `AtariVectorEnv` runs N emulators on native threads and already does the standard
DQN preprocessing (Mnih et al. 2015; Machado et al. 2018): no-op starts, frame skip 4 with
a max over the last two frames, 84x84 grayscale, a 4-frame stack, terminal on life loss and
reward clipping (both for training only), and sticky actions. Doing the same with
gymnasium's wrappers costs a Python call per env per step (and needs opencv), so this
adapter only translates its outputs to TF-Agents time steps:

- observations [N, 84, 84, 4] uint8, channels last with the newest frame last (ale-py
  gives [N, 4, 84, 84]), the layout Keras convolutions expect; `--env_kwargs` img_height,
  img_width and stack_num change the three (210, 160 is the emulator's own screen);
- actions 0..n-1 over the game's action set, or over `--env_kwargs` "actions" (agent
  action i plays the listed env action i);
- ale-py's NEXT_STEP autoreset: the call after an episode's last step returns the next
  episode's first observation and ignores the action. That is TF-Agents' own LAST -> FIRST
  boundary, so it maps one to one;
- termination gives discount 0; truncation (the 108,000-frame cap) keeps discount 1;
- terminal on life loss (training only) is a MID time step with discount 0: the TD target
  stops there, but the game goes on, as in Mnih et al. 2015. ale-py's own
  `episodic_life=True` restarts the whole game at every life loss (seen with ale-py
  0.12.1: lives go back to 5), so the agent would never see a game's later lives; the
  adapter asks for `life_loss_info=True` instead, which reports the loss and continues.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tf_agents.environments import py_environment
from tf_agents.specs import array_spec
from tf_agents.trajectories import time_step as ts

from tfa_suite.envs.atari_eval import channels_last, open_game


class AtariEnvironment(py_environment.PyEnvironment):
    """`num_envs` copies of one game, preprocessed by ale-py, as a batched PyEnvironment.

    `training=True` turns on terminal-on-life-loss and reward clipping; evaluation must
    see whole games and true scores, so it leaves both off. `sticky_actions` is the
    probability (0.25 in Machado et al. 2018) that the emulator repeats the previous action.
    The frame size and stack come from `env_kwargs` alone (ale-py's img_height, img_width,
    stack_num; 84, 84, 4 by default), as for evaluation, so the two cannot disagree.
    """

    def __init__(
        self,
        game: str,
        num_envs: int,
        seed: int | None,
        training: bool,
        sticky_actions: float = 0.0,
        num_threads: int = 0,
        env_kwargs: dict[str, Any] | None = None,
    ):
        super().__init__(handle_auto_reset=False)
        self._env, self._actions = open_game(
            game,
            num_envs,
            env_kwargs or {},
            num_threads=num_threads,
            repeat_action_probability=sticky_actions,
            episodic_life=False,
            life_loss_info=training,
            reward_clipping=training,
        )
        self._num_envs = num_envs
        self._seed = seed
        stack, height, width = self._env.single_observation_space.shape
        shape = (height, width, stack)
        # Full-shape bounds, not scalars: TF-Agents samples specs to build networks and
        # computes maximum + 1, which overflows a numpy-2 uint8 scalar (255 + 1 == 0) but
        # not the Python int it takes from a full-shape array.
        self._observation_spec = array_spec.BoundedArraySpec(
            shape,
            np.uint8,
            np.zeros(shape, np.uint8),
            np.full(shape, 255, np.uint8),
            name="observation",
        )
        self._action_spec = array_spec.BoundedArraySpec(
            (), np.int64, 0, len(self._actions) - 1, name="action"
        )
        self._ended = np.zeros(num_envs, dtype=bool)
        self._life_loss_terminal = training

    @property
    def batched(self) -> bool:
        return True

    @property
    def batch_size(self) -> int:
        return self._num_envs

    def observation_spec(self) -> array_spec.BoundedArraySpec:
        return self._observation_spec

    def action_spec(self) -> array_spec.BoundedArraySpec:
        return self._action_spec

    def _reset(self) -> ts.TimeStep:
        seed, self._seed = self._seed, None  # later resets continue the emulators' RNG
        obs, _ = self._env.reset(seed=seed)
        self._ended[:] = False
        return ts.restart(channels_last(obs), batch_size=self._num_envs)

    def _step(self, action: np.ndarray) -> ts.TimeStep:
        obs, reward, terminated, truncated, info = self._env.step(
            self._actions[np.asarray(action, np.int64)]
        )
        restarted = self._ended  # these envs were reset by this call (NEXT_STEP autoreset)
        # With life_loss_info, `terminated` also marks a lost life while lives remain; the
        # game (and the episode) continues after it.
        life_lost = terminated & (np.asarray(info["lives"]) > 0) & self._life_loss_terminal
        ended = ((terminated & ~life_lost) | truncated) & ~restarted
        step_type = np.where(
            restarted, ts.StepType.FIRST, np.where(ended, ts.StepType.LAST, ts.StepType.MID)
        ).astype(np.int32)
        # Termination ends the bootstrap; truncation keeps discount 1 (time ran out).
        discount = np.where(terminated & ~restarted, 0.0, 1.0).astype(np.float32)
        reward = np.where(restarted, 0.0, reward).astype(np.float32)
        self._ended = ended
        return ts.TimeStep(step_type, reward, discount, channels_last(obs))

    def close(self) -> None:
        self._env.close()
