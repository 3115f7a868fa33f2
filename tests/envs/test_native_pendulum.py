"""TFPendulumEnv against gymnasium's Pendulum-v1, its TF-Agents semantics and its graph purity."""

from __future__ import annotations

import tfa_suite  # noqa: F401  -- first: it selects Keras 2 before TensorFlow loads

# isort: split

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf
from gymnasium.envs.classic_control.pendulum import angle_normalize
from tf_agents.drivers import dynamic_step_driver
from tf_agents.policies import random_tf_policy
from tf_agents.replay_buffers import tf_uniform_replay_buffer
from tf_agents.trajectories import time_step as ts

from tfa_suite.envs.native.pendulum import TFPendulumEnv, pendulum_dynamics
from tfa_suite.loops.graph_checks import find_host_round_trips

FIRST, MID, LAST = (int(t) for t in (ts.StepType.FIRST, ts.StepType.MID, ts.StepType.LAST))

# The reward tolerance where gymnasium's libm `pow` misrounds a square (see the module
# docstring): the float64 costs then differ by at most ~7e-10 (one float32 ulp of
# 0.001 * u**2, plus its rounding), and TF-Agents' float32 reward adds 2^-24 relative.
REWARD_RTOL, REWARD_ATOL = 2.0**-24, 1e-9


@pytest.fixture(scope="module")
def gym_env():
    env = gym.make("Pendulum-v1")
    env.reset(seed=0)
    yield env
    env.close()


def gym_squares_exact(state: np.ndarray, action: np.ndarray) -> bool:
    """Whether gymnasium's `x**2` (libm pow) equals `x * x` for all three squares of a step.

    Where it does, gymnasium's cost is reproducible bit for bit, so the test demands it.
    """
    th, thdot = state  # NumPy float64 scalars, as in gymnasium's step
    normalized = angle_normalize(th)
    u = np.clip(action, -2.0, 2.0)[0]  # float32, as gymnasium gets it from a float32 action
    return normalized**2 == normalized * normalized and thdot**2 == thdot * thdot and u**2 == u * u


def assert_rewards_match(reward: np.ndarray, gym_reward: np.ndarray, exact: np.ndarray) -> None:
    """Bit-exact to float32(gymnasium's reward) where it can be, within the tolerance elsewhere."""
    np.testing.assert_array_equal(reward[exact], gym_reward[exact].astype(np.float32))
    np.testing.assert_allclose(reward, gym_reward, rtol=REWARD_RTOL, atol=REWARD_ATOL)


def test_specs_match_gymnasium(gym_env):
    env = TFPendulumEnv(batch_size=2, seed=0)
    assert env.time_step_spec() == ts.time_step_spec(env.observation_spec())
    obs_spec, action_spec = env.observation_spec(), env.action_spec()
    for spec, space in ((obs_spec, gym_env.observation_space), (action_spec, gym_env.action_space)):
        assert (spec.dtype, tuple(spec.shape)) == (tf.float32, space.shape)
        np.testing.assert_array_equal(np.broadcast_to(spec.minimum, space.shape), space.low)
        np.testing.assert_array_equal(np.broadcast_to(spec.maximum, space.shape), space.high)
    assert (obs_spec.name, action_spec.name) == ("observation", "action")


def test_single_steps_match_gymnasium(gym_env):
    rng = np.random.default_rng(1)
    n = 4000
    # gymnasium never wraps theta, so spinning episodes reach any angle; thdot near +-8
    # makes the speed clip bind, and multiples of pi probe angle_normalize's wrap point.
    states = np.stack([rng.uniform(-4 * np.pi, 4 * np.pi, n), rng.uniform(-8, 8, n)], axis=1)
    wrap_rows = rng.random(n) < 0.05
    states[wrap_rows, 0] = rng.integers(-3, 4, wrap_rows.sum()) * np.pi
    fast_rows = rng.random(n) < 0.3
    states[fast_rows, 1] = rng.choice([-1, 1], fast_rows.sum()) * rng.uniform(
        7.5, 8, fast_rows.sum()
    )
    # About half the torques lie outside [-2, 2], so gymnasium's clip matters; some sit on it.
    actions = rng.uniform(-4, 4, (n, 1)).astype(np.float32)
    edge_rows = rng.random(n) < 0.05
    actions[edge_rows, 0] = rng.choice([-2.0, 0.0, 2.0], edge_rows.sum())

    env = TFPendulumEnv(batch_size=n, seed=0)
    env.set_state(states, step_count=1)
    step = env.step(tf.constant(actions))
    tf_state = env.get_state()[0].numpy()
    _, tf_costs = pendulum_dynamics(tf.constant(states), tf.constant(actions[:, 0]))

    gym_obs, gym_state, gym_reward = [], [], []
    for state, action in zip(states, actions, strict=True):
        gym_env.unwrapped.state = state.copy()
        obs, reward, terminated, truncated, _ = gym_env.unwrapped.step(action)
        assert not (terminated or truncated)
        gym_obs.append(obs)
        gym_state.append(gym_env.unwrapped.state)
        gym_reward.append(reward)
    gym_state, gym_reward = np.array(gym_state), np.array(gym_reward)
    exact = np.array([gym_squares_exact(s, a) for s, a in zip(states, actions, strict=True)])

    # The float64 state and the float32 observation agree bit for bit: float32 dynamics, a
    # float64 torque (NumPy keeps gymnasium's 3.0 * u in float32) or a regrouped product
    # would each fail this.
    np.testing.assert_array_equal(tf_state, gym_state)
    np.testing.assert_array_equal(step.observation.numpy(), np.array(gym_obs))
    # The float64 cost is exact too wherever libm's pow squares exactly; so is the float32
    # reward. Computing 0.001 * u**2 in float64 would break the first of these.
    np.testing.assert_array_equal(-tf_costs.numpy()[exact], gym_reward[exact])
    np.testing.assert_allclose(-tf_costs.numpy(), gym_reward, rtol=0, atol=REWARD_ATOL)
    assert_rewards_match(step.reward.numpy(), gym_reward, exact)
    assert exact.mean() > 0.99  # The exact checks cover nearly every row.
    np.testing.assert_array_equal(step.step_type, MID)
    np.testing.assert_array_equal(step.discount, 1.0)
    # The clips were actually exercised.
    assert 0.05 < np.mean(np.abs(gym_state[:, 1]) == 8.0) < 0.5
    assert 0.3 < np.mean(np.abs(actions) > 2.0) < 0.7


def test_whole_episodes_match_gymnasium():
    """Batched episodes beside gymnasium's TimeLimit-wrapped envs, resynced only at resets.

    Each 200-step episode must stay bit-exact on its own, end exactly when gymnasium
    truncates, and restart. Env 0 pumps energy with an out-of-range bang-bang torque, so it
    swings up, spins and runs into the speed clip; the others follow a fixed action sequence.
    """
    batch, steps = 6, 2 * 201 + 20  # Two whole episodes, their reset steps, and a bit more.
    actions = np.random.default_rng(2).uniform(-3, 3, (steps, batch, 1)).astype(np.float32)
    env = TFPendulumEnv(batch_size=batch, seed=3)
    gym_envs = [gym.make("Pendulum-v1") for _ in range(batch)]

    def resync(i: int) -> None:
        gym_envs[i].reset(seed=i)
        gym_envs[i].unwrapped.state = env.get_state()[0].numpy()[i].copy()

    obs = env.reset().observation.numpy()
    for i in range(batch):
        resync(i)
    truncations, pump_speeds = 0, []
    for t in range(steps):
        actions[t, 0] = np.where(obs[0, 2] >= 0, 2.5, -2.5)
        states_before = [e.unwrapped.state.copy() for e in gym_envs]
        step_type, reward, discount, obs = (x.numpy() for x in env.step(tf.constant(actions[t])))
        np.testing.assert_array_equal(discount, 1.0)
        for i in range(batch):
            if step_type[i] == FIRST:
                assert reward[i] == 0.0
                resync(i)
                continue
            gym_obs, gym_reward, terminated, truncated, _ = gym_envs[i].step(actions[t, i])
            np.testing.assert_array_equal(obs[i], gym_obs)
            np.testing.assert_array_equal(env.get_state()[0][i], gym_envs[i].unwrapped.state)
            exact = gym_squares_exact(states_before[i], actions[t, i])
            assert_rewards_match(reward[i : i + 1], np.array([gym_reward]), np.array([exact]))
            assert not terminated
            assert (step_type[i] == LAST) == truncated
            truncations += truncated
        pump_speeds.append(gym_envs[0].unwrapped.state[1])
    assert truncations == 2 * batch
    assert np.max(np.abs(pump_speeds)) == 8.0  # The pumped env did reach the speed clip.


def test_time_limit_truncates_with_discount_one_and_auto_resets():
    env = TFPendulumEnv(batch_size=3, seed=0)
    state = [[2.0, -1.0], [0.5, 3.0], [-1.0, 0.0]]
    env.set_state(state, step_count=[199, 198, 5])
    torques = tf.constant([[1.0], [-1.0], [0.5]])
    _, costs = pendulum_dynamics(tf.constant(state, tf.float64), torques[:, 0])
    step = env.step(torques)
    np.testing.assert_array_equal(step.step_type, [LAST, MID, MID])
    np.testing.assert_array_equal(step.discount, [1.0, 1.0, 1.0])  # truncated, not terminated
    np.testing.assert_array_equal(step.reward, tf.cast(-costs, tf.float32))

    step = env.step(torques)
    np.testing.assert_array_equal(step.step_type, [FIRST, LAST, MID])
    np.testing.assert_array_equal(step.discount, [1.0, 1.0, 1.0])
    assert step.reward[0] == 0.0 and step.reward[1] < 0.0 and step.reward[2] < 0.0
    physics, step_count = (x.numpy() for x in env.get_state())
    np.testing.assert_array_equal(step_count, [0, 200, 7])
    assert abs(physics[0, 0]) <= np.pi and abs(physics[0, 1]) <= 1.0  # a fresh reset state

    step = env.step(torques)
    np.testing.assert_array_equal(step.step_type, [MID, FIRST, MID])
    np.testing.assert_array_equal(env.get_state()[1], [1, 0, 8])


@pytest.mark.parametrize("limit", [200, 5])
def test_episode_length_is_the_time_limit(limit):
    env = TFPendulumEnv(batch_size=2, **({} if limit == 200 else {"max_episode_steps": limit}))
    assert env.reset().step_type.numpy().tolist() == [FIRST, FIRST]
    types = [env.step(tf.constant([[0.3], [-3.0]])).step_type.numpy() for _ in range(limit + 2)]
    expected = [MID] * (limit - 1) + [LAST, FIRST, MID]
    np.testing.assert_array_equal(np.array(types), np.array([expected, expected]).T)


def test_reset_step_ignores_the_action():
    envs = [TFPendulumEnv(batch_size=2, seed=5, max_episode_steps=3) for _ in range(2)]
    for env in envs:
        env.set_state([[1.0, 0.0]] * 2, step_count=2)
        assert np.all(env.step(tf.constant([[1.0], [1.0]])).step_type == LAST)
    first_a = envs[0].step(tf.constant([[-2.0], [0.0]]))
    first_b = envs[1].step(tf.constant([[2.0], [5.0]]))
    assert np.all(first_a.step_type == FIRST)
    np.testing.assert_array_equal(first_a.observation, first_b.observation)
    np.testing.assert_array_equal(first_a.reward, [0.0, 0.0])


def test_reset_distribution():
    env = TFPendulumEnv(batch_size=50_000, seed=0)
    step = env.reset()
    state = env.get_state()[0].numpy()
    np.testing.assert_array_equal(step.step_type, FIRST)
    np.testing.assert_array_equal(step.reward, 0.0)
    np.testing.assert_array_equal(step.discount, 1.0)
    # The observation is gymnasium's, from the float64 state.
    expected = np.stack([np.cos(state[:, 0]), np.sin(state[:, 0]), state[:, 1]], axis=1)
    np.testing.assert_array_equal(step.observation, expected.astype(np.float32))
    high = np.array([np.pi, 1.0])
    assert np.all(np.abs(state) <= high)
    np.testing.assert_allclose(state.mean(axis=0) / high, 0.0, atol=0.012)  # ~4.6 std errors
    np.testing.assert_allclose(state.std(axis=0), 2 * high / np.sqrt(12), rtol=0.01)
    counts = np.stack(
        [np.histogram(state[:, j], bins=10, range=(-high[j], high[j]))[0] for j in range(2)]
    )
    np.testing.assert_allclose(counts, 5000, rtol=0.08)


def _trajectory(env: TFPendulumEnv, steps: int = 60) -> np.ndarray:
    rng = np.random.default_rng(0)
    actions = tf.constant(rng.uniform(-3, 3, (steps, env.batch_size, 1)), tf.float32)
    observations = [env.reset().observation]
    observations += [env.step(actions[t]).observation for t in range(steps)]
    return np.stack(observations)


def test_seeding_and_reseed():
    same = _trajectory(TFPendulumEnv(batch_size=4, seed=7))
    np.testing.assert_array_equal(same, _trajectory(TFPendulumEnv(batch_size=4, seed=7)))
    assert not np.allclose(same, _trajectory(TFPendulumEnv(batch_size=4, seed=8)))
    # reseed() restarts the stream, whatever the env was built with and has drawn since.
    reseeded = []
    for seed in (8, 9):
        env = TFPendulumEnv(batch_size=4, seed=seed)
        env.step(tf.zeros([4, 1]))
        env.reseed(7)
        reseeded.append(_trajectory(env))
    np.testing.assert_array_equal(reseeded[0], reseeded[1])
    assert not np.allclose(reseeded[0], _trajectory(TFPendulumEnv(batch_size=4, seed=9)))


def test_eager_tf_function_and_while_loop_agree():
    """Op-by-op eager, one tf.function call per step and a tf.while_loop give the same bits.

    Grappler only rewrites graphs, so this also checks that it leaves the arithmetic alone.
    """
    steps, batch = 80, 5
    actions = tf.constant(np.random.default_rng(1).uniform(-3, 3, (steps, batch, 1)), tf.float32)
    eager_env, called_env, loop_env = (
        TFPendulumEnv(batch_size=batch, seed=11, max_episode_steps=30) for _ in range(3)
    )
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


def test_step_graph_is_pure_tensorflow():
    """The traced step holds the physics and the reset draw as graph ops, and no py_function.

    (test_tf_cartpole shows that find_host_round_trips does find py_function and friends.)
    """
    env = TFPendulumEnv(batch_size=2, seed=0)

    @tf.function(autograph=False)
    def step(action):
        return env.step(action)

    concrete = step.get_concrete_function(tf.TensorSpec([2, 1], tf.float32))
    graph_def = concrete.graph.as_graph_def()
    op_types = {n.op for n in graph_def.node}
    op_types |= {n.op for f in graph_def.library.function for n in f.node_def}
    assert {"Sin", "Cos", "FloorMod", "RngReadAndSkip", "AssignVariableOp"} <= op_types
    assert not op_types & {"PyFunc", "PyFuncStateless", "EagerPyFunc", "NumpyFunction"}
    assert find_host_round_trips(concrete) == []


def test_checkpoint_restores_episodes_and_random_stream(tmp_path):
    # A short time limit makes the trajectory cross resets, which draw from the generator.
    env = TFPendulumEnv(batch_size=3, seed=0, max_episode_steps=10)
    checkpoint = tf.train.Checkpoint(env=env)
    env.step(tf.constant([[1.0], [2.0], [3.0]]))
    path = checkpoint.save(tmp_path / "ckpt")
    first = _trajectory(env, steps=35)
    checkpoint.restore(path)
    np.testing.assert_array_equal(first, _trajectory(env, steps=35))


def test_random_policy_driver_in_one_pure_graph():
    batch, steps = 4, 250  # Long enough for every env to hit the 200-step limit once.
    env = TFPendulumEnv(batch_size=batch, seed=0)
    policy = random_tf_policy.RandomTFPolicy(env.time_step_spec(), env.action_spec())
    buffer = tf_uniform_replay_buffer.TFUniformReplayBuffer(
        policy.trajectory_spec, batch_size=batch, max_length=2 * steps
    )
    driver = dynamic_step_driver.DynamicStepDriver(
        env, policy, observers=[buffer.add_batch], num_steps=batch * steps
    )

    @tf.function(autograph=False)
    def collect():
        return driver.run()

    time_step, _ = collect()
    assert time_step.observation.shape == (batch, 3)
    assert find_host_round_trips(collect.get_concrete_function()) == []
    traj = tf.nest.map_structure(lambda x: x.numpy(), buffer.gather_all())
    # The driver does not count the LAST -> FIRST boundary step, so each env took one more.
    assert traj.observation.shape == (batch, steps + 1, 3)
    expected_types = [FIRST] + [MID] * 199 + [LAST, FIRST] + [MID] * (steps - 201)
    np.testing.assert_array_equal(
        traj.step_type, np.broadcast_to(expected_types, traj.reward.shape)
    )
    np.testing.assert_array_equal(traj.discount, 1.0)
    action = traj.action[..., 0]
    assert np.all(np.abs(action) <= 2.0) and np.std(action) > 1.0
    # Each reward is the cost of the observation and action it was recorded with (up to the
    # float32 observation), except the LAST -> FIRST boundary step's, which is 0.
    cos, sin, thdot = np.moveaxis(traj.observation.astype(np.float64), -1, 0)
    costs = np.arctan2(sin, cos) ** 2 + 0.1 * thdot**2 + 0.001 * action.astype(np.float64) ** 2
    boundary = traj.step_type == LAST
    np.testing.assert_allclose(traj.reward[~boundary], -costs[~boundary], rtol=0, atol=1e-5)
    np.testing.assert_array_equal(traj.reward[boundary], 0.0)
