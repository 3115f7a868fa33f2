"""The Atari adapter over ale-py's vector env: specs, preprocessing, episode boundaries."""

import tfa_suite  # noqa: F401  isort: skip

import csv

import numpy as np
import pytest
from tf_agents.trajectories import time_step as ts

from tfa_suite.envs.atari import AtariEnvironment
from tfa_suite.errors import UserError

FIRST, MID, LAST = (int(t) for t in (ts.StepType.FIRST, ts.StepType.MID, ts.StepType.LAST))


def play(env: AtariEnvironment, steps: int, seed: int = 0) -> list[ts.TimeStep]:
    rng = np.random.default_rng(seed)
    out = [env.reset()]
    n = env.action_spec().maximum + 1
    for _ in range(steps):
        out.append(env.step(rng.integers(0, n, size=env.batch_size)))
    return out


def test_specs_and_preprocessed_observations():
    env = AtariEnvironment("pong", num_envs=2, seed=0, training=True)
    assert env.batched and env.batch_size == 2
    spec = env.observation_spec()
    assert spec.shape == (84, 84, 4) and spec.dtype == np.uint8
    assert env.action_spec().dtype == np.int64 and env.action_spec().maximum == 5
    steps = play(env, 20)
    for step in steps:
        assert step.observation.shape == (2, 84, 84, 4)
        assert step.observation.dtype == np.uint8
        assert step.reward.dtype == np.float32 and step.discount.dtype == np.float32
    # Channels last, newest frame last: each step shifts the stack by one frame.
    a, b = steps[10].observation, steps[11].observation
    np.testing.assert_array_equal(b[..., :3], a[..., 1:])
    env.close()


def test_same_seed_same_frames_and_rewards():
    runs = []
    for _ in range(2):
        env = AtariEnvironment("pong", num_envs=2, seed=3, training=True)
        runs.append(play(env, 50))
        env.close()
    for x, y in zip(runs[0], runs[1]):
        np.testing.assert_array_equal(x.observation, y.observation)
        np.testing.assert_array_equal(x.reward, y.reward)


def test_breakout_life_loss_is_terminal_for_learning_but_the_game_continues():
    env = AtariEnvironment("breakout", num_envs=1, seed=0, training=True)
    steps = play(env, 600)
    kinds = np.array([int(s.step_type[0]) for s in steps])
    discounts = np.array([float(s.discount[0]) for s in steps])
    life_losses = np.flatnonzero((kinds == MID) & (discounts == 0.0))
    assert len(life_losses) >= 4, "random play loses lives within 600 steps"
    # A life loss does not restart the game: the step after it is MID, not FIRST.
    assert all(kinds[i + 1] == MID for i in life_losses if i + 1 < len(kinds))
    # The game ends (LAST, discount 0) only after all five lives, then restarts (FIRST).
    ends = np.flatnonzero(kinds == LAST)
    assert len(ends) >= 1 and discounts[ends[0]] == 0.0
    assert kinds[ends[0] + 1] == FIRST
    assert len(life_losses[life_losses < ends[0]]) == 4
    env.close()


def test_evaluation_keeps_whole_games_and_true_scores():
    env = AtariEnvironment("breakout", num_envs=1, seed=0, training=False)
    steps = play(env, 600)
    kinds = np.array([int(s.step_type[0]) for s in steps])
    discounts = np.array([float(s.discount[0]) for s in steps])
    # No life-loss terminals in evaluation: discount 0 only on the game's LAST step.
    assert np.all((discounts == 1.0) | (kinds == LAST))
    env.close()


def test_rewards_are_clipped_for_training_only():
    # Breakout's bricks are worth up to 7 points; clipping makes every reward -1, 0 or 1.
    rewards = {}
    for training in (True, False):
        env = AtariEnvironment("breakout", num_envs=4, seed=1, training=training)
        rewards[training] = np.concatenate([s.reward for s in play(env, 1500)])
        env.close()
    assert set(np.unique(rewards[True])) <= {-1.0, 0.0, 1.0}
    assert rewards[False].max() >= 1.0


def test_the_step_after_a_game_ends_is_a_reset_with_zero_reward():
    env = AtariEnvironment("pong", num_envs=1, seed=0, training=True)
    # A random Pong game lasts ~800-1000 agent steps; run until one ends.
    rng = np.random.default_rng(0)
    step = env.reset()
    for _ in range(3000):
        prev = step
        step = env.step(rng.integers(0, 6, size=1))
        if int(prev.step_type[0]) == LAST:
            assert int(step.step_type[0]) == FIRST
            assert float(step.reward[0]) == 0.0 and float(step.discount[0]) == 1.0
            break
    else:
        pytest.fail("no Pong game ended within 3000 steps")
    env.close()


def test_unknown_game_is_a_user_error():
    with pytest.raises(UserError, match="no_such_game"):
        AtariEnvironment("no_such_game", num_envs=1, seed=0, training=True)


def test_atari_training_smoke_run_writes_outputs(tmp_path):
    import os

    from tfa_suite.config import make_config
    from tfa_suite.training import train

    config = make_config(
        env="ALE/Pong-v5",
        root_dir=str(tmp_path / "pong"),
        conv_layers="16:8:4,32:4:2",
        fc_layers=[32],
        num_envs=2,
        collect_steps_per_iteration=8,
        train_steps_per_iteration=1,
        batch_size=8,
        replay_capacity=1_000,
        initial_collect_steps=64,
        num_env_steps=160,
        eval_interval=0,
        eval_episodes=1,
        metrics_interval=80,
        checkpoint_replay=False,
        video_episodes=0,
    )
    result = train(config)
    assert result.env_steps >= 160 and result.train_steps > 0
    # One whole game of Pong, scored without clipping: between -21 and 21.
    assert -21.0 <= result.final_eval_mean <= 21.0
    assert os.path.isfile(os.path.join(result.root_dir, "policy", "saved_model.pb"))
    # No Pong game ends in 160 steps: the training return is unknown, not a score of 0.
    with open(os.path.join(result.root_dir, "metrics.csv"), newline="") as f:
        assert [row["train_return"] for row in csv.DictReader(f)] == ["", ""]
    # Resuming restores every saved value (FrameStoreReplay left out) and trains on.
    extended = train(config.replace(num_env_steps=240))
    assert extended.resumed_from_env_steps == result.env_steps
    assert extended.env_steps >= 240


def test_c51_agent_trains_on_atari_frames(tmp_path):
    import tensorflow as tf

    from tfa_suite.config import make_config
    from tfa_suite.envs.loading import EnvSpec
    from tfa_suite.training import build, resolve_config

    config = resolve_config(
        make_config(
            env="ALE/Pong-v5",
            agent="c51",
            root_dir="unused",
            conv_layers="16:8:4",
            fc_layers=[16],
            num_envs=2,
            collect_steps_per_iteration=8,
            batch_size=8,
            replay_capacity=500,
            initial_collect_steps=32,
        )
    )
    parts = build(config, EnvSpec(config.run.env))
    # Stacked frames go to the frame-once replay: about one 84x84 frame per transition.
    from tfa_suite.replay.frame_store import FrameStoreReplay

    assert isinstance(parts.loop.replay, FrameStoreReplay)
    assert parts.loop.replay.bytes_per_transition() < 8 * 1024
    parts.loop.prefill(32)
    loss = float(parts.loop.collect_train(tf.constant(2, tf.int64), tf.constant(2, tf.int64)))
    assert np.isfinite(loss) and loss > 0  # cross-entropy over 51 atoms
