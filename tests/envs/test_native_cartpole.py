"""TFCartPoleEnv against gymnasium's CartPole-v1, its TF-Agents semantics and its graph purity."""

from __future__ import annotations

import tfa_suite  # noqa: F401  -- first: it selects Keras 2 before TensorFlow loads

# isort: split

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf
from tf_agents.agents.dqn import dqn_agent
from tf_agents.drivers import dynamic_step_driver
from tf_agents.networks import q_network
from tf_agents.replay_buffers import tf_uniform_replay_buffer
from tf_agents.trajectories import time_step as ts

from tfa_suite.envs.native.cartpole import THETA_THRESHOLD_RADIANS, X_THRESHOLD, TFCartPoleEnv
from tfa_suite.loops.graph_checks import find_host_round_trips

FIRST, MID, LAST = (int(t) for t in (ts.StepType.FIRST, ts.StepType.MID, ts.StepType.LAST))


@pytest.fixture(scope="module")
def gym_env():
    env = gym.make("CartPole-v1")
    env.reset(seed=0)
    yield env
    env.close()


def controller(obs: np.ndarray) -> np.ndarray:
    """A linear bang-bang policy that balances for the full 500 steps."""
    return (obs @ np.array([0.05, 0.3, 3.0, 1.0]) > 0).astype(np.int64)


def test_specs_match_tf_agents_helpers():
    env = TFCartPoleEnv(batch_size=2, seed=0)
    assert env.time_step_spec() == ts.time_step_spec(env.observation_spec())
    assert env.observation_spec() == tf.TensorSpec([4], tf.float32, name="observation")
    action_spec = env.action_spec()
    assert (action_spec.dtype, action_spec.shape) == (tf.int64, ())
    assert (int(action_spec.minimum), int(action_spec.maximum)) == (0, 1)


def test_single_steps_match_gymnasium(gym_env):
    rng = np.random.default_rng(1)
    n = 3000
    states = rng.uniform([-2.4, -3, -0.21, -3], [2.4, 3, 0.21, 3], size=(n, 4))
    # Move a third of the rows to within 3% of the x threshold and a third to within 3% of
    # the theta one, on either side, so that termination decisions are tested at the edge.
    near = rng.integers(3, size=n)
    for which, (col, bound) in enumerate(((0, X_THRESHOLD), (2, THETA_THRESHOLD_RADIANS)), 1):
        rows = near == which
        gap = rng.uniform(0, 0.03, rows.sum()) * bound
        states[rows, col] = rng.choice([-1, 1], rows.sum()) * (bound - gap)
    actions = rng.integers(2, size=n)

    env = TFCartPoleEnv(batch_size=n, seed=0)
    env.set_state(states, step_count=1)
    step = env.step(tf.constant(actions))
    tf_state = env.get_state()[0].numpy()

    gym_obs, gym_state, gym_terminated = [], [], []
    for state, action in zip(states, actions, strict=True):
        gym_env.unwrapped.state = state.copy()
        gym_env.unwrapped.steps_beyond_terminated = None
        obs, reward, terminated, truncated, _ = gym_env.unwrapped.step(int(action))
        assert reward == 1.0 and not truncated
        gym_obs.append(obs)
        gym_state.append(gym_env.unwrapped.state)
        gym_terminated.append(terminated)
    gym_terminated = np.array(gym_terminated)

    np.testing.assert_allclose(step.observation.numpy(), np.array(gym_obs), rtol=0, atol=1e-5)
    # The float64 state agrees far beyond float32 precision: float32 dynamics would fail this.
    np.testing.assert_allclose(tf_state, np.array(gym_state), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(step.reward.numpy(), 1.0)
    np.testing.assert_array_equal(step.step_type.numpy() == LAST, gym_terminated)
    np.testing.assert_array_equal(step.discount.numpy() == 0.0, gym_terminated)
    assert 0.1 < gym_terminated.mean() < 0.9  # Both outcomes were actually exercised.


def test_long_rollouts_match_gymnasium():
    """Batched rollouts beside gymnasium envs with TimeLimit, resynced only at resets.

    Some envs follow a balancing controller, so their 500-step episodes test truncation and
    long-horizon agreement: CartPole amplifies any difference about e^4 per simulated second,
    so this passes only because the TF step reproduces gymnasium's arithmetic bit for bit.
    """
    batch, steps = 12, 700
    epsilon = np.linspace(0.0, 1.0, batch)  # From always-balancing to uniformly random.
    rng = np.random.default_rng(2)
    env = TFCartPoleEnv(batch_size=batch, seed=3)
    gym_envs = [gym.make("CartPole-v1") for _ in range(batch)]

    def resync(i: int) -> None:
        gym_envs[i].reset(seed=i)
        gym_envs[i].unwrapped.state = env.get_state()[0].numpy()[i]

    obs = env.reset().observation.numpy()
    for i in range(batch):
        resync(i)
    ends = {"terminated": 0, "truncated": 0}
    for _ in range(steps):
        random_action = rng.random(batch) < epsilon
        actions = np.where(random_action, rng.integers(2, size=batch), controller(obs))
        step_type, reward, discount, obs = (x.numpy() for x in env.step(tf.constant(actions)))
        for i in range(batch):
            if step_type[i] == FIRST:
                assert reward[i] == 0.0 and discount[i] == 1.0
                resync(i)
                continue
            gym_obs, gym_reward, terminated, truncated, _ = gym_envs[i].step(int(actions[i]))
            np.testing.assert_allclose(obs[i], gym_obs, rtol=0, atol=1e-5)
            assert reward[i] == gym_reward == 1.0
            assert (step_type[i] == LAST) == (terminated or truncated)
            assert (discount[i] == 0.0) == terminated
            if terminated or truncated:
                ends["terminated" if terminated else "truncated"] += 1
    # The run must have covered both kinds of episode end.
    assert ends["terminated"] > 10 and ends["truncated"] >= 2, ends


def test_truncation_termination_and_auto_reset():
    env = TFCartPoleEnv(batch_size=3, seed=0)
    upright = [0.0, 0.0, 0.0, 0.0]
    falling_off = [X_THRESHOLD - 1e-3, 1.0, 0.0, 0.0]  # One step takes x past 2.4.
    # Env 0 runs out of time, env 1 terminates, env 2 carries on.
    env.set_state([upright, falling_off, upright], step_count=[499, 10, 10])
    step = env.step(tf.constant([0, 1, 1], tf.int64))
    np.testing.assert_array_equal(step.step_type, [LAST, LAST, MID])
    np.testing.assert_array_equal(step.discount, [1.0, 0.0, 1.0])
    np.testing.assert_array_equal(step.reward, [1.0, 1.0, 1.0])

    step = env.step(tf.constant([1, 1, 1], tf.int64))
    np.testing.assert_array_equal(step.step_type, [FIRST, FIRST, MID])
    np.testing.assert_array_equal(step.reward, [0.0, 0.0, 1.0])
    np.testing.assert_array_equal(step.discount, [1.0, 1.0, 1.0])
    assert np.all(np.abs(step.observation[:2]) <= 0.05)
    np.testing.assert_array_equal(env.get_state()[1], [0, 0, 12])


def test_natural_truncation_with_short_time_limit():
    env = TFCartPoleEnv(batch_size=4, seed=0, max_episode_steps=5)
    env.reset()
    types = [env.step(tf.constant([0, 1, 0, 1], tf.int64)).step_type.numpy() for _ in range(7)]
    np.testing.assert_array_equal(np.array(types)[:, 0], [MID] * 4 + [LAST, FIRST, MID])


def test_reset_step_ignores_the_action():
    envs = [TFCartPoleEnv(batch_size=2, seed=5) for _ in range(2)]
    for env in envs:
        env.set_state([[3.0, 0.0, 0.0, 0.0]] * 2, step_count=1)
        assert np.all(env.step(tf.constant([1, 1], tf.int64)).step_type == LAST)
    first_a = envs[0].step(tf.constant([0, 0], tf.int64))
    first_b = envs[1].step(tf.constant([1, 1], tf.int64))
    assert np.all(first_a.step_type == FIRST)
    np.testing.assert_array_equal(first_a.observation, first_b.observation)


def test_reset_distribution():
    step = TFCartPoleEnv(batch_size=50_000, seed=0).reset()
    obs = step.observation.numpy()
    np.testing.assert_array_equal(step.step_type, FIRST)
    np.testing.assert_array_equal(step.reward, 0.0)
    np.testing.assert_array_equal(step.discount, 1.0)
    assert np.all(np.abs(obs) <= 0.05)
    np.testing.assert_allclose(obs.mean(axis=0), 0.0, atol=1e-3)  # ~8 standard errors
    np.testing.assert_allclose(obs.std(axis=0), 0.1 / np.sqrt(12), rtol=0.02)
    counts = np.stack([np.histogram(obs[:, j], bins=10, range=(-0.05, 0.05))[0] for j in range(4)])
    np.testing.assert_allclose(counts, 5000, rtol=0.08)


def _trajectory(env: TFCartPoleEnv, steps: int = 60) -> np.ndarray:
    actions = tf.constant(np.random.default_rng(0).integers(2, size=(steps, env.batch_size)))
    observations = [env.reset().observation]
    observations += [env.step(actions[t]).observation for t in range(steps)]
    return np.stack(observations)


def test_seeding():
    same = _trajectory(TFCartPoleEnv(batch_size=4, seed=7))
    np.testing.assert_array_equal(same, _trajectory(TFCartPoleEnv(batch_size=4, seed=7)))
    assert not np.allclose(same, _trajectory(TFCartPoleEnv(batch_size=4, seed=8)))


def test_eager_tf_function_and_while_loop_agree():
    """Op-by-op eager, one tf.function call per step and a tf.while_loop give the same bits.

    Grappler only rewrites graphs, so this also checks that it leaves the arithmetic alone.
    """
    steps, batch = 80, 5
    actions = tf.constant(np.random.default_rng(1).integers(2, size=(steps, batch)))
    eager_env, called_env, loop_env = (TFCartPoleEnv(batch_size=batch, seed=11) for _ in range(3))
    tf.config.run_functions_eagerly(True)
    try:
        for t in range(steps):
            eager_step = eager_env.step(actions[t])
    finally:
        tf.config.run_functions_eagerly(False)
    for t in range(steps):
        called_step = called_env.step(actions[t])

    @tf.function(autograph=False)
    def run_loop():
        def body(t, _):
            return t + 1, loop_env.step(actions[t])

        return tf.while_loop(lambda t, _: t < steps, body, (0, loop_env.current_time_step()))[1]

    loop_step = run_loop()
    for step in (called_step, loop_step):
        tf.nest.map_structure(np.testing.assert_array_equal, eager_step, step)
    for env in (called_env, loop_env):
        np.testing.assert_array_equal(eager_env.get_state()[0], env.get_state()[0])
    assert find_host_round_trips(run_loop.get_concrete_function()) == []


def test_checkpoint_restores_episodes_and_random_stream(tmp_path):
    env = TFCartPoleEnv(batch_size=3, seed=0)
    checkpoint = tf.train.Checkpoint(env=env)
    path = checkpoint.save(tmp_path / "ckpt")
    first = _trajectory(env, steps=30)
    checkpoint.restore(path)
    np.testing.assert_array_equal(first, _trajectory(env, steps=30))


def test_host_round_trip_check_catches_python_calls():
    @tf.function(autograph=False)
    def nested(x):
        eager = tf.py_function(lambda v: v + 1, [x], tf.int32)
        numpy = tf.numpy_function(lambda v: v * 2, [x], tf.int32)
        return tf.reshape(eager + numpy, [])

    @tf.function(autograph=False)
    def impure():
        return tf.while_loop(lambda i: i < 3, lambda i: nested(i), [tf.constant(0)])

    found = find_host_round_trips(impure.get_concrete_function())
    assert sorted(f.rsplit(":", 1)[1] for f in found) == ["EagerPyFunc", "PyFunc"]


def test_dqn_collect_and_train_in_one_pure_graph():
    env = TFCartPoleEnv(batch_size=8, seed=0)
    net = q_network.QNetwork(env.observation_spec(), env.action_spec(), fc_layer_params=(32,))
    agent = dqn_agent.DqnAgent(
        env.time_step_spec(),
        env.action_spec(),
        q_network=net,
        optimizer=tf.keras.optimizers.Adam(1e-3),
    )
    agent.initialize()
    buffer = tf_uniform_replay_buffer.TFUniformReplayBuffer(
        agent.collect_data_spec, batch_size=env.batch_size, max_length=200
    )
    driver = dynamic_step_driver.DynamicStepDriver(
        env, agent.collect_policy, observers=[buffer.add_batch], num_steps=64
    )

    @tf.function(autograph=False)
    def collect():
        return driver.run()

    @tf.function(autograph=False)
    def collect_and_train():
        driver.run()
        experience, _ = buffer.get_next(sample_batch_size=16, num_steps=2)
        return agent.train(experience).loss

    time_step, _ = collect()
    assert time_step.observation.shape == (8, 4)
    assert int(buffer.num_frames()) >= 64
    assert np.isfinite(collect_and_train().numpy())
    assert find_host_round_trips(collect.get_concrete_function()) == []
    assert find_host_round_trips(collect_and_train.get_concrete_function()) == []
