"""build_agent: DQN / double DQN on real environment specs, its loss, and its errors."""

from __future__ import annotations

import tfa_suite  # noqa: F401  -- first: it selects Keras 2 before TensorFlow loads

# isort: split

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.agents.dqn import dqn_agent
from tf_agents.metrics import tf_metrics
from tf_agents.trajectories import time_step as ts
from tf_agents.trajectories import trajectory

from tfa_suite.agents import AgentContext, nstep
from tfa_suite.catalog import build_agent, make_config
from tfa_suite.envs.gym_adapter import make_tf_env
from tfa_suite.envs.loading import EnvSpec
from tfa_suite.errors import UnsupportedSpaceError, UserError

SMALL = {"fc_layers": [16]}


def env_specs(env: str, kwargs: dict | None = None):
    tf_env = make_tf_env(EnvSpec(env, kwargs or {}), num_envs=1, seed=0)
    return tf_env.time_step_spec(), tf_env.action_spec()


@pytest.fixture(scope="module")
def cartpole_specs():
    return env_specs("CartPole-v1")


def context_for(specs) -> AgentContext:
    return AgentContext(
        time_step_spec=specs[0],
        action_spec=specs[1],
        train_step=tf.Variable(0, dtype=tf.int64, name="train_step"),
        env_steps=tf_metrics.EnvironmentSteps(),
        initial_collect_steps=0,
    )


def make_agent(specs, **overrides):
    config = make_config(**{**SMALL, **overrides})
    context = context_for(specs)
    agent = build_agent(config, context).agent
    return agent, context.train_step


def cartpole_batch(batch: int, length: int, reward: float = 1.0, seed: int = 0):
    """A hand-made [batch, length] batch of CartPole-shaped mid-episode transitions."""
    rng = np.random.default_rng(seed)
    shape = [batch, length]
    return trajectory.Trajectory(
        step_type=tf.fill(shape, ts.StepType.MID),
        observation=tf.constant(rng.normal(size=[batch, length, 4]).astype(np.float32)),
        action=tf.constant(rng.integers(0, 2, size=shape), dtype=tf.int64),
        policy_info=(),
        next_step_type=tf.fill(shape, ts.StepType.MID),
        reward=tf.fill(shape, np.float32(reward)),
        discount=tf.ones(shape, tf.float32),
    )


# --- which agent ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "double_dqn, expected", [(False, dqn_agent.DqnAgent), (True, dqn_agent.DdqnAgent)]
)
def test_double_dqn_picks_the_agent_class(cartpole_specs, double_dqn, expected):
    agent, _ = make_agent(cartpole_specs, double_dqn=double_dqn)
    # TF-Agents' class itself, with only the truncation mask of tfa_suite.agents.nstep on top.
    assert type(agent).__mro__[1:3] == (nstep.TruncationMasked, expected)


@pytest.mark.parametrize("n_step", [1, 3])
def test_n_step_sets_the_train_sequence_length(cartpole_specs, n_step):
    agent, counter = make_agent(cartpole_specs, n_step=n_step)
    assert agent.train_sequence_length == n_step + 1
    # A batch of that length trains; n-step targets need all n + 1 steps.
    loss = agent.train(cartpole_batch(4, n_step + 1)).loss
    assert np.isfinite(loss.numpy())
    assert int(counter.numpy()) == 1


def test_q_network_output_is_batch_by_num_actions(cartpole_specs):
    agent, _ = make_agent(cartpole_specs, fc_layers=[32, 8])
    observations = tf.random.uniform([5, 4])
    q_values, _ = agent._q_network(observations)
    assert q_values.shape == (5, 2)
    # The hidden layers follow --fc_layers.
    kernels = [v.shape for v in agent._q_network.trainable_variables if "kernel" in v.name]
    assert kernels == [(4, 32), (32, 8), (8, 2)]


def test_greedy_policy_takes_the_best_q_value(cartpole_specs):
    # The policy that evaluation and export use, at env step 0, where epsilon is 1.
    tf.random.set_seed(0)  # initial weights whose greedy action differs across the batch
    built = build_agent(make_config(**SMALL), context_for(cartpole_specs))
    agent = built.agent
    observations = tf.random.stateless_normal([64, 4], seed=[0, 1])
    time_step = ts.restart(observations, batch_size=64)
    actions = built.greedy_policy.action(time_step).action.numpy()
    assert actions.shape == (64,) and actions.dtype == np.int64
    q_values = agent._q_network(observations)[0].numpy()
    np.testing.assert_array_equal(actions, np.argmax(q_values, axis=1))
    assert 0 < actions.mean() < 1  # both actions occur, so a constant policy would fail


# --- training -------------------------------------------------------------------------


@pytest.mark.parametrize("double_dqn", [False, True])
def test_train_step_returns_finite_loss_and_counts(cartpole_specs, double_dqn):
    agent, counter = make_agent(cartpole_specs, double_dqn=double_dqn)
    assert counter.dtype == tf.int64
    before = [v.numpy().copy() for v in agent._q_network.trainable_variables]
    loss_info = agent.train(cartpole_batch(8, 2))
    assert loss_info.loss.shape == ()
    assert np.isfinite(loss_info.loss.numpy())
    assert int(counter.numpy()) == 1
    agent.train(cartpole_batch(8, 2, seed=1))
    assert int(counter.numpy()) == 2
    after = agent._q_network.trainable_variables
    assert any(not np.allclose(b, a.numpy()) for b, a in zip(before, after, strict=True))


def train_loss(agent, batch) -> float:
    """The loss of one train step, computed before its update.

    agent.loss() would not do: TF-Agents' DqnAgent.loss() ignores the agent's gamma.
    """
    return float(agent.train(batch).loss)


def test_repeated_training_on_one_batch_lowers_its_loss(cartpole_specs):
    agent, _ = make_agent(cartpole_specs, gamma=0.0, learning_rate=0.01)
    batch = cartpole_batch(16, 2, reward=1.0)
    first = train_loss(agent, batch)
    for _ in range(60):
        last = train_loss(agent, batch)
    assert last < 0.2 * first


@pytest.mark.parametrize("loss", ["huber", "squared"])
def test_loss_choice_shapes_large_td_errors(cartpole_specs, loss):
    # gamma=0 makes the TD target the reward itself, so the TD error is about 100.
    agent, _ = make_agent(cartpole_specs, loss=loss, gamma=0.0)
    value = train_loss(agent, cartpole_batch(8, 2, reward=100.0))
    if loss == "huber":
        assert 90.0 < value < 110.0  # linear in the error beyond 1
    else:
        assert 8_000.0 < value < 12_000.0  # quadratic


@pytest.mark.parametrize("gamma", [0.0, 0.9])
def test_gamma_reaches_the_td_target(cartpole_specs, gamma):
    agent, _ = make_agent(cartpole_specs, gamma=gamma, loss="squared")
    batch = cartpole_batch(8, 2, reward=0.5)
    obs, actions = batch.observation.numpy(), batch.action.numpy()
    q = agent._q_network(obs[:, 0])[0].numpy()
    q_next = agent._target_q_network(obs[:, 1])[0].numpy()
    q_taken = q[np.arange(8), actions[:, 0]]
    target = 0.5 + gamma * q_next.max(axis=1)
    expected = np.mean((target - q_taken) ** 2)
    assert train_loss(agent, batch) == pytest.approx(expected, rel=1e-4, abs=1e-6)


# --- other spaces ---------------------------------------------------------------------


def test_discrete_action_with_start_builds_with_three_actions():
    specs = env_specs("tests.envs_for_tests:CountdownEnv", {"num_actions": 3, "action_start": -1})
    agent, _ = make_agent(specs)
    q_values, _ = agent._q_network(tf.zeros([2, 2]))
    assert q_values.shape == (2, 3)


def test_integer_multibinary_observations_are_cast_for_the_network():
    specs = env_specs("tests.envs_for_tests:MultiBinaryObsEnv")
    assert specs[0].observation.dtype == tf.int32
    agent, _ = make_agent(specs)
    q_values, _ = agent._q_network(tf.ones([4, 5], tf.int32))
    assert q_values.shape == (4, 3)


def test_continuous_actions_are_rejected_naming_the_action_spec():
    specs = env_specs("Pendulum-v1")
    with pytest.raises(UnsupportedSpaceError) as info:
        make_agent(specs, env="Pendulum-v1")
    message = str(info.value)
    # It names the env's action kind and the agents that take it.
    assert "--agent=dqn takes discrete actions, but Pendulum-v1 has continuous" in message
    assert "float32" in message
    assert "agents for continuous actions: a2c, ddpg, ppo, reinforce, sac, td3" in message


def test_unsupported_observations_are_named_in_one_short_line():
    specs = env_specs("tests.envs_for_tests:MultiBinaryObsEnv")
    make_agent(specs)  # an int32 vector (MultiBinary) is cast to float, as before
    with pytest.raises(UnsupportedSpaceError) as info:
        make_agent(env_specs("tests.envs_for_tests:DictObsEnv"))
    assert "\n" not in str(info.value)


def test_unknown_agent_is_a_user_error_listing_the_known_ones(cartpole_specs):
    with pytest.raises(UserError) as info:
        make_agent(cartpole_specs, agent="trpo")
    message = str(info.value)
    assert "unknown --agent 'trpo'" in message
    assert "dqn" in message and "ppo" in message
