"""The rollout loop's workaround for TensorFlow's AddN rewrite in its minibatch loops.

PPO on Pong frames stopped at its first update with grappler's AlreadyExistsError (see
LARGE_OBSERVATION_BYTES in tfa_suite/loops/rollout.py). The loop now turns TensorFlow's
arithmetic optimization off, process-wide, only for minibatch loops on large observations.
"""

from __future__ import annotations

import json

import pytest
import tensorflow as tf

from tfa_suite.agents.interface import RolloutHooks
from tfa_suite.loops.rollout import needs_addn_workaround, observation_bytes

PONG_FRAMES = tf.TensorSpec([210, 160, 2], tf.uint8)
CARTPOLE = tf.TensorSpec([4], tf.float32)
MINIBATCHES = RolloutHooks(prepare=lambda rollout, time_step: rollout, entries_independent=True)
WHOLE_ROLLOUT = RolloutHooks(entries_independent=False, single_update=True)


def test_only_minibatch_loops_on_large_observations_need_it():
    assert observation_bytes(PONG_FRAMES) == 67_200
    assert observation_bytes({"a": CARTPOLE, "b": tf.TensorSpec([2], tf.int64)}) == 32
    assert needs_addn_workaround(PONG_FRAMES, MINIBATCHES)  # PPO, A2C on Pong
    assert not needs_addn_workaround(PONG_FRAMES, WHOLE_ROLLOUT)  # REINFORCE on Pong
    assert not needs_addn_workaround(CARTPOLE, MINIBATCHES)  # PPO on CartPole


PONG_PPO = [
    "--env=ALE/Pong-v5",
    "--env_kwargs=" + json.dumps({"img_height": 210, "img_width": 160, "stack_num": 2,
                                  "actions": [2, 3]}),
    "--agent=ppo", "--observation_preprocessing=pong_diff", "--actor_layers=200",
    "--value_layers=200", "--activation=relu", "--entropy_coef=0.01", "--num_envs=8",
    "--rollout_steps=128", "--num_epochs=4", "--minibatch_size=256", "--eval_interval=0",
    "--video_episodes=0", "--num_env_steps=1024",
]  # fmt: skip


@pytest.mark.slow
def test_ppo_trains_on_pong_frames(binaries, tmp_path):
    # Without the workaround this run stops at its first update with AlreadyExistsError.
    # A fresh process, since the switch it flips is process-wide.
    done = binaries.run("experiments/train.py", *PONG_PPO, f"--root_dir={tmp_path}", timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "AlreadyExists" not in done.stderr
    assert "arithmetic graph optimization is off for this process" in done.stdout
    assert json.loads((tmp_path / "result.json").read_text())["train_steps"] == 16
