"""What every test module shares: the tiny run configs and the runner of the repo's binaries.

Imported by pytest before any test module: `import tfa_suite` selects Keras 2
(TF_USE_LEGACY_KERAS=1) before anything can import TensorFlow.

- `tiny_config(root_dir, agent=..., backend=..., **fields)` (fixture): the smallest run
  that still passes through every stage (initial collection, train steps, metrics rows and
  checkpoints), for any agent, on its own env; a test overrides only the fields it is about.
- `binaries` (fixture): runs `experiments/train.py`, `experiments/evaluate.py` and the
  other scripts as fresh processes from the repo root.
"""

from __future__ import annotations

import tfa_suite  # noqa: F401  isort: skip

import os
import pathlib
import subprocess
import sys
from typing import Any

import pytest

from tfa_suite.catalog import make_config
from tfa_suite.config import TrainConfig, describe
from tfa_suite.envs.atari_eval import atari_game

REPO = pathlib.Path(__file__).resolve().parent.parent

# Shared by every agent: 400 env steps on 2 envs, a metrics row and a checkpoint every 100,
# no evaluation and no video unless a test asks for them.
TINY_RUN: dict[str, Any] = dict(
    num_envs=2,
    num_env_steps=400,
    eval_interval=0,
    eval_episodes=2,
    checkpoint_interval=100,
    metrics_interval=100,
    log_interval_seconds=0.01,
    video_episodes=0,
)
# The replay loop's collection and updates: one gradient step per 8 env steps, from step 32.
TINY_LOOP: dict[str, Any] = dict(
    initial_collect_steps=32,
    collect_steps_per_iteration=8,
    train_steps_per_iteration=1,
    batch_size=16,
    replay_capacity=1_000,
)
# The rollout loop's: rollouts of 8 batched steps (16 entries on the 2 envs).
TINY_ROLLOUT: dict[str, Any] = dict(rollout_steps=8)
TINY_LOOPS: dict[str, dict[str, Any]] = {"replay": TINY_LOOP, "rollout": TINY_ROLLOUT}
# Per agent: its default env (each has a TF-native version, so both backends work) and the
# smallest networks.
TINY_AGENT: dict[str, dict[str, Any]] = {
    "dqn": dict(env="CartPole-v1", fc_layers=[16]),
    "c51": dict(env="CartPole-v1", fc_layers=[16]),
    "ddpg": dict(env="Pendulum-v1", actor_layers=[16], critic_layers=[16]),
    "td3": dict(env="Pendulum-v1", actor_layers=[16], critic_layers=[16]),
    "sac": dict(env="Pendulum-v1", actor_layers=[16], critic_layers=[16]),
    "tabular_q": dict(env="CartPole-v1"),  # the env's default grid
    "reinforce": dict(env="CartPole-v1", actor_layers=[16], value_layers=[16]),
    "a2c": dict(env="CartPole-v1", actor_layers=[16], value_layers=[16]),
    # Two epochs of minibatches of 8: four gradient steps per rollout.
    "ppo": dict(
        env="CartPole-v1", actor_layers=[16], value_layers=[16], minibatch_size=8, num_epochs=2
    ),
}
# Atari frames (ALE/<Game>-v5, always the python backend): a one-layer conv torso and a
# replay sized for 28 KB observations.
TINY_ATARI: dict[str, Any] = dict(
    backend="auto",
    conv_layers="16:8:4",
    batch_size=8,
    replay_capacity=500,
    checkpoint_replay=False,
)


def make_tiny_config(
    root_dir: str | os.PathLike = "unused",
    *,
    agent: str = "dqn",
    backend: str = "graph",
    **fields: Any,
) -> TrainConfig:
    """The tiny run of `agent` on the `backend` ("graph": the TF-native env, "python":
    gymnasium's), changed by `fields` (flag names). An `env=ALE/...` id gets the Atari
    torso and the python backend; a gymnasium or import-path env needs `backend="python"`.
    """
    from tfa_suite.agents import agent_spec

    loop = TINY_LOOPS[agent_spec(agent).loop]
    values = {**TINY_RUN, **loop, **TINY_AGENT[agent], "backend": backend}
    if atari_game(fields.get("env", "")) is not None:
        # The conv torso and frame-sized replay are the replay loop's; on-policy agents
        # take their frames through --observation_preprocessing.
        values.update(TINY_ATARI if loop is TINY_LOOP else dict(backend="auto"))
    values.update(fields)
    return make_config(agent=agent, root_dir=str(root_dir), **values)


@pytest.fixture(scope="session")
def tiny_config():
    """`make_tiny_config`, for tests and fixtures of any scope."""
    return make_tiny_config


class Binaries:
    """The repo's scripts (`experiments/train.py`, ...), each run in a fresh process.

    The interpreter is the one running the tests and the working directory the repo root,
    so they see the same installed stack as the tests and behave as documented.
    """

    repo = REPO

    def argv(self, script: str, *args: str) -> list[str]:
        return [sys.executable, str(REPO / script), *args]

    def run(self, script: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """Runs to the end; stdout and stderr are captured as text."""
        return subprocess.run(
            self.argv(script, *args), cwd=REPO, capture_output=True, text=True, timeout=timeout
        )

    def start(self, script: str, *args: str, **popen_kwargs: Any) -> subprocess.Popen:
        """Starts it and returns at once, for tests that signal or kill it."""
        return subprocess.Popen(self.argv(script, *args), cwd=REPO, **popen_kwargs)

    @staticmethod
    def flags(config: TrainConfig) -> list[str]:
        """`config` as command-line flags (every field, as `describe` writes flags.txt)."""
        return describe(config).splitlines()


@pytest.fixture(scope="session")
def binaries() -> Binaries:
    return Binaries()
