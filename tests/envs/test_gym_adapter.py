"""GymnasiumEnvironment and its factories: specs, step types, discounts, seeding, batching."""

from __future__ import annotations

import tfa_suite  # noqa: F401  -- first: it selects Keras 2 before TensorFlow loads

# isort: split

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf
from tf_agents.environments import batched_py_environment, tf_py_environment
from tf_agents.trajectories import time_step as ts

from tests.envs_for_tests import CountdownEnv
from tfa_suite.envs.gym_adapter import (
    GymnasiumEnvironment,
    make_batched_py_env,
    make_py_env,
    make_tf_env,
    space_to_spec,
)
from tfa_suite.envs.loading import EnvSpec
from tfa_suite.errors import UnsupportedSpaceError, UserError

FIRST, MID, LAST = ts.StepType.FIRST, ts.StepType.MID, ts.StepType.LAST
CARTPOLE = EnvSpec("CartPole-v1")
COUNTDOWN = "tests.envs_for_tests:CountdownEnv"


def expected_bounds(bounds: np.ndarray) -> np.ndarray:
    """The Box bounds as TF-Agents stores them: infinities become the dtype's extremes."""
    info = np.finfo(bounds.dtype) if np.issubdtype(bounds.dtype, np.floating) else None
    if info is None:
        return bounds
    return np.where(np.isposinf(bounds), info.max, np.where(np.isneginf(bounds), info.min, bounds))


def run_actions(env, actions):
    """Steps `env` with each action; returns the list of time steps (reset first)."""
    steps = [env.reset()]
    for a in actions:
        steps.append(env.step(np.asarray(a, dtype=np.int64)))
    return steps


# --- specs ---------------------------------------------------------------------------


@pytest.mark.parametrize("env_id", ["CartPole-v1", "MountainCar-v0"])
def test_box_observation_and_discrete_action_specs_match_the_gym_spaces(env_id):
    env = make_py_env(EnvSpec(env_id), seed=0)
    space = env.gym_env.observation_space
    obs_spec, action_spec = env.observation_spec(), env.action_spec()
    assert obs_spec.shape == space.shape
    assert obs_spec.dtype == space.dtype == np.float32
    np.testing.assert_array_equal(obs_spec.minimum, expected_bounds(space.low))
    np.testing.assert_array_equal(obs_spec.maximum, expected_bounds(space.high))
    assert action_spec.shape == ()
    assert action_spec.dtype == np.int64
    assert action_spec.minimum == 0
    assert action_spec.maximum == env.gym_env.action_space.n - 1
    # The observations the adapter returns fit the spec, dtype included.
    time_step = env.reset()
    assert time_step.observation.dtype == np.float32
    assert time_step.observation.shape == space.shape
    env.close()


def test_space_to_spec_box_keeps_dtype_and_per_element_bounds():
    space = gym.spaces.Box(
        low=np.array([-1.0, 0.0, -np.inf]), high=np.array([2.0, 5.0, np.inf]), dtype=np.float64
    )
    spec = space_to_spec(space, "observation")
    assert spec.dtype == np.float64
    assert spec.shape == (3,)
    # Finite bounds are kept exactly; TF-Agents stores infinite ones as the dtype's extremes.
    np.testing.assert_array_equal(spec.minimum, [-1.0, 0.0, np.finfo(np.float64).min])
    np.testing.assert_array_equal(spec.maximum, [2.0, 5.0, np.finfo(np.float64).max])
    assert spec.name == "observation"

    image = space_to_spec(gym.spaces.Box(0, 255, shape=(8, 6, 3), dtype=np.uint8), "observation")
    assert image.dtype == np.uint8
    assert image.shape == (8, 6, 3)
    assert np.all(image.minimum == 0) and np.all(image.maximum == 255)


@pytest.mark.parametrize(
    "space, shape, dtype, low, high",
    [
        (gym.spaces.Discrete(5), (), np.int64, 0, 4),
        (gym.spaces.Discrete(3, start=-1), (), np.int64, 0, 2),
        (gym.spaces.Discrete(4, start=7), (), np.int64, 0, 3),
        (gym.spaces.MultiBinary(6), (6,), np.int32, 0, 1),
        (gym.spaces.MultiDiscrete([2, 5]), (2,), np.int64, 0, [1, 4]),
    ],
)
def test_space_to_spec_integer_spaces(space, shape, dtype, low, high):
    spec = space_to_spec(space, "action")
    assert spec.shape == shape
    assert spec.dtype == dtype
    np.testing.assert_array_equal(spec.minimum, low)
    np.testing.assert_array_equal(spec.maximum, high)


def test_frozenlake_discrete_observation_is_an_int64_scalar():
    env = make_py_env(EnvSpec("FrozenLake-v1", {"is_slippery": False}), seed=0)
    spec = env.observation_spec()
    assert spec.shape == () and spec.dtype == np.int64
    assert (spec.minimum, spec.maximum) == (0, 15)
    time_step = env.reset()
    assert time_step.observation.dtype == np.int64
    assert time_step.observation.shape == ()
    assert int(time_step.observation) == 0  # the start square
    # Moving right (action 2) on the deterministic lake goes to square 1.
    assert int(env.step(np.int64(2)).observation) == 1


def test_discrete_action_with_start_is_offset_when_stepping():
    gym_env = CountdownEnv(length=10, num_actions=3, action_start=-1)
    env = GymnasiumEnvironment(gym_env, seed=0)
    assert (env.action_spec().minimum, env.action_spec().maximum) == (0, 2)
    run_actions(env, [0, 1, 2, 0])
    assert gym_env.actions_received == [-1, 0, 1, -1]
    # gymnasium envs expect plain Python ints for Discrete actions.
    assert all(type(a) is int for a in gym_env.actions_received)
    # Every received action lies in the gym space.
    assert all(gym_env.action_space.contains(a) for a in gym_env.actions_received)


def test_discrete_action_without_start_is_passed_as_int():
    gym_env = CountdownEnv(length=10, num_actions=2)
    env = GymnasiumEnvironment(gym_env, seed=0)
    run_actions(env, [1, 0, 1])
    assert gym_env.actions_received == [1, 0, 1]
    assert all(type(a) is int for a in gym_env.actions_received)


def test_discrete_observation_with_start_lies_within_its_spec():
    env = make_py_env(EnvSpec("tests.envs_for_tests:OffsetObsEnv"), seed=0)
    spec = env.observation_spec()
    observations = [env.reset().observation] + [env.step(np.int64(0)).observation for _ in range(4)]
    for obs in observations:
        assert spec.minimum <= obs <= spec.maximum, (obs, spec)


@pytest.mark.parametrize(
    "env_name, which, space_name",
    [
        ("DictObsEnv", "observation", "Dict("),
        ("TupleActionEnv", "action", "Tuple("),
    ],
)
def test_unsupported_spaces_raise_naming_the_space(env_name, which, space_name):
    with pytest.raises(UnsupportedSpaceError) as info:
        make_py_env(EnvSpec(f"tests.envs_for_tests:{env_name}"), seed=0)
    message = str(info.value)
    assert f"unsupported {which} space" in message
    assert space_name in message
    # It is a UserError, so the binaries print it as one line and exit 2.
    assert isinstance(info.value, UserError)


def test_space_to_spec_rejects_multidiscrete_with_nonzero_start():
    space = gym.spaces.MultiDiscrete([3, 3], start=[1, 0])
    with pytest.raises(UnsupportedSpaceError, match="MultiDiscrete"):
        space_to_spec(space, "action")


# --- step types and discounts ----------------------------------------------------------


def test_time_limit_truncation_is_last_with_discount_one():
    env = make_py_env(EnvSpec("CartPole-v1", max_episode_steps=5), seed=0)
    steps = run_actions(env, [0, 1, 0, 1, 0])  # alternating: the pole stays up for 5 steps
    assert [s.step_type for s in steps] == [FIRST, MID, MID, MID, MID, LAST]
    assert steps[-1].discount == np.float32(1.0)
    assert steps[-1].reward == np.float32(1.0)
    assert all(s.discount == 1.0 for s in steps)


def test_time_limit_truncation_of_a_user_factory_is_last_with_discount_one():
    env = make_py_env(EnvSpec("tests.envs_for_tests:make_truncated_env", {"limit": 3}), seed=0)
    steps = run_actions(env, [0, 0, 0])
    assert [s.step_type for s in steps] == [FIRST, MID, MID, LAST]
    assert steps[-1].discount == 1.0
    assert [float(s.reward) for s in steps] == [0.0, 1.0, 1.0, 1.0]


def test_termination_is_last_with_discount_zero_on_cartpole():
    env = make_py_env(CARTPOLE, seed=0)
    env.reset()
    steps = []
    for _ in range(100):  # always pushing right makes the pole fall in a few dozen steps
        steps.append(env.step(np.int64(1)))
        if steps[-1].is_last():
            break
    assert steps[-1].step_type == LAST
    assert steps[-1].discount == np.float32(0.0)
    assert len(steps) < 500  # it fell: the time limit did not end it
    assert all(s.step_type == MID and s.discount == 1.0 for s in steps[:-1])


def test_termination_after_exactly_n_steps_is_last_with_discount_zero():
    env = make_py_env(EnvSpec(COUNTDOWN, {"length": 4, "reward_scale": 0.5}), seed=0)
    steps = run_actions(env, [1, 1, 1, 1])
    assert [s.step_type for s in steps] == [FIRST, MID, MID, MID, LAST]
    assert [float(s.discount) for s in steps] == [1.0, 1.0, 1.0, 1.0, 0.0]
    assert [float(s.reward) for s in steps] == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert all(s.reward.dtype == np.float32 and s.discount.dtype == np.float32 for s in steps)


def test_termination_wins_when_the_time_limit_ends_the_same_step():
    # The episode terminates at step 3 and the TimeLimit truncates at step 3 too.
    env = make_py_env(EnvSpec(COUNTDOWN, {"length": 3}, max_episode_steps=3), seed=0)
    steps = run_actions(env, [0, 0, 0])
    assert steps[-1].step_type == LAST
    assert steps[-1].discount == 0.0


def test_max_episode_steps_truncates_a_user_env_before_it_terminates():
    env = make_py_env(EnvSpec(COUNTDOWN, {"length": 10}, max_episode_steps=2), seed=0)
    steps = run_actions(env, [0, 0])
    assert [s.step_type for s in steps] == [FIRST, MID, LAST]
    assert steps[-1].discount == 1.0


# --- auto-reset -----------------------------------------------------------------------


def test_step_after_last_is_first_and_the_episode_continues():
    gym_env = CountdownEnv(length=2)
    env = GymnasiumEnvironment(gym_env, seed=0)
    steps = run_actions(env, [1, 1, 1, 0, 1])
    assert [s.step_type for s in steps] == [FIRST, MID, LAST, FIRST, MID, LAST]
    reset_step = steps[3]
    assert reset_step.reward == 0.0 and reset_step.discount == 1.0
    np.testing.assert_array_equal(reset_step.observation, [2.0, 0.0])  # a fresh episode
    # The action given on the reset step is not applied to the environment.
    assert gym_env.actions_received == [1, 1, 0, 1]
    assert gym_env.resets == 2
    assert [float(s.reward) for s in steps] == [0.0, 1.0, 2.0, 0.0, 1.0, 2.0]


def test_first_step_without_reset_resets_automatically():
    gym_env = CountdownEnv(length=5)
    env = GymnasiumEnvironment(gym_env, seed=0)
    first = env.step(np.int64(1))
    assert first.step_type == FIRST
    assert gym_env.actions_received == []
    assert env.step(np.int64(1)).step_type == MID
    assert gym_env.actions_received == [1]


# --- seeding --------------------------------------------------------------------------


def rollout(seed, num_steps=120):
    """Observations and rewards of CartPole under a fixed action pattern."""
    env = make_py_env(CARTPOLE, seed=seed)
    observations, rewards, step_types = [], [], []
    time_step = env.reset()
    for i in range(num_steps):
        observations.append(time_step.observation)
        rewards.append(time_step.reward)
        step_types.append(time_step.step_type)
        time_step = env.step(np.int64(1 if i % 3 else 0))
    env.close()
    return np.array(observations), np.array(rewards), np.array(step_types)


def test_same_seed_gives_identical_trajectories_over_several_episodes():
    obs_a, rew_a, types_a = rollout(seed=3)
    obs_b, rew_b, types_b = rollout(seed=3)
    assert np.sum(types_a == FIRST) >= 3  # several episodes, so later resets are covered
    np.testing.assert_array_equal(obs_a, obs_b)
    np.testing.assert_array_equal(rew_a, rew_b)
    np.testing.assert_array_equal(types_a, types_b)


def test_different_seeds_give_different_trajectories():
    obs_a, _, _ = rollout(seed=3, num_steps=20)
    obs_b, _, _ = rollout(seed=4, num_steps=20)
    assert not np.array_equal(obs_a[0], obs_b[0])


def test_later_episodes_do_not_repeat_the_first_one():
    obs, _, types = rollout(seed=5)
    starts = obs[types == FIRST]
    assert len(starts) >= 3
    assert len({tuple(s) for s in starts}) == len(starts)


def test_seed_makes_the_first_observation_match_gymnasium_reset():
    env = make_py_env(CARTPOLE, seed=11)
    expected, _ = gym.make("CartPole-v1").reset(seed=11)
    np.testing.assert_array_equal(env.reset().observation, expected)


# --- batched and TF environments -----------------------------------------------------


def test_batched_env_has_n_copies_with_copy_i_seeded_seed_plus_i():
    num_envs, seed = 3, 20
    batched = make_batched_py_env(CARTPOLE, num_envs, seed)
    assert isinstance(batched, batched_py_environment.BatchedPyEnvironment)
    assert batched.batched and batched.batch_size == num_envs
    first = batched.reset()
    assert first.observation.shape == (num_envs, 4)
    assert first.step_type.shape == (num_envs,)
    np.testing.assert_array_equal(first.step_type, [FIRST] * num_envs)
    for i in range(num_envs):
        single = make_py_env(CARTPOLE, seed=seed + i)
        np.testing.assert_array_equal(first.observation[i], single.reset().observation)
    # The copies really differ from one another.
    assert not np.array_equal(first.observation[0], first.observation[1])

    step = batched.step(np.array([0, 1, 0], dtype=np.int64))
    assert step.observation.shape == (num_envs, 4)
    assert step.reward.shape == (num_envs,)
    np.testing.assert_array_equal(step.step_type, [MID] * num_envs)
    batched.close()


def test_batched_env_copies_end_and_reset_independently():
    batched = make_batched_py_env(EnvSpec(COUNTDOWN, {"length": 2}), num_envs=2, seed=0)
    batched.reset()
    types = []
    for _ in range(3):
        types.append(batched.step(np.array([1, 1], dtype=np.int64)).step_type.tolist())
    assert types == [[MID, MID], [LAST, LAST], [FIRST, FIRST]]


def test_tf_env_batch_size_specs_and_step():
    tf_env = make_tf_env(CARTPOLE, num_envs=2, seed=0)
    assert isinstance(tf_env, tf_py_environment.TFPyEnvironment)
    assert tf_env.batch_size == 2
    obs_spec = tf_env.observation_spec()
    assert obs_spec.shape == (4,) and obs_spec.dtype == tf.float32
    action_spec = tf_env.action_spec()
    assert action_spec.shape == () and action_spec.dtype == tf.int64
    assert int(action_spec.minimum) == 0 and int(action_spec.maximum) == 1
    assert tf_env.time_step_spec().discount.dtype == tf.float32

    first = tf_env.reset()
    assert first.observation.shape == (2, 4)
    np.testing.assert_array_equal(first.step_type.numpy(), [FIRST, FIRST])
    # The TF env's first observations are those of the seeded python copies.
    for i in range(2):
        np.testing.assert_array_equal(
            first.observation[i].numpy(), make_py_env(CARTPOLE, seed=i).reset().observation
        )
    step = tf_env.step(tf.constant([0, 1], tf.int64))
    assert step.reward.shape == (2,)
    np.testing.assert_array_equal(step.step_type.numpy(), [MID, MID])


# --- rendering ------------------------------------------------------------------------


def test_render_returns_rgb_frames():
    env = make_py_env(CARTPOLE, seed=0, render=True)
    env.reset()
    frame = env.render()
    assert isinstance(frame, np.ndarray)
    assert frame.dtype == np.uint8
    assert frame.ndim == 3 and frame.shape[2] == 3
    assert frame.shape[0] > 0 and frame.shape[1] > 0
    assert frame.std() > 0  # a picture, not a blank canvas
    env.close()


def test_without_render_there_are_no_frames():
    env = make_py_env(CARTPOLE, seed=0)
    env.reset()
    assert env.gym_env.render_mode is None
