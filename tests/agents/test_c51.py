"""C51: the categorical projection of the Bellman target, and the agent's loss built on it.

TF-Agents' `project_distribution` spreads each target atom's probability over the two
fixed atoms around it (Bellemare et al. 2017, eq. 7); the agent's loss is the
cross-entropy from that projected target to the predicted distribution of the action taken.
"""

from __future__ import annotations

import tfa_suite  # noqa: F401  -- first: it selects Keras 2 before TensorFlow loads

# isort: split

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.agents.categorical_dqn import categorical_dqn_agent
from tf_agents.metrics import tf_metrics
from tf_agents.trajectories import time_step as ts
from tf_agents.trajectories import trajectory

from tfa_suite.agents import AgentContext
from tfa_suite.catalog import build_agent, make_config
from tfa_suite.envs.gym_adapter import make_tf_env
from tfa_suite.envs.loading import EnvSpec

SUPPORT = np.array([-2.0, -1.0, 0.0, 1.0, 2.0], np.float32)  # 5 atoms, 1 apart


def project(supports, weights, support=SUPPORT) -> np.ndarray:
    return categorical_dqn_agent.project_distribution(
        tf.constant(supports, tf.float32),
        tf.constant(weights, tf.float32),
        tf.constant(support, tf.float32),
    ).numpy()


# --- the projection -------------------------------------------------------------------


@pytest.mark.parametrize(
    "reward, gamma, weights, expected",
    [
        # r + gamma * z = [-0.5, 0, 0.5, 1, 1.5]: the atoms between two fixed ones split
        # half and half (-0.5 -> -1 and 0; 0.5 -> 0 and 1; 1.5 -> 1 and 2), the others land.
        (0.5, 0.5, [0.1, 0.2, 0.3, 0.2, 0.2], [0.0, 0.05, 0.4, 0.45, 0.1]),
        # r + z = [-1.75, -0.75, 0.25, 1.25, 2.25]: a quarter of the way past an atom puts
        # 3/4 on it and 1/4 on the next; 2.25 lies past the last atom and lands on it.
        (0.25, 1.0, [0.4, 0.0, 0.2, 0.2, 0.2], [0.3, 0.1, 0.15, 0.2, 0.25]),
        # r + z = [0, 1, 2, 3, 4]: the mass beyond the top atom piles up on it.
        (2.0, 1.0, [0.2] * 5, [0.0, 0.0, 0.2, 0.2, 0.6]),
        # r + z = [-5, -4, -3, -2, -1]: and below the bottom atom, on that one.
        (-3.0, 1.0, [0.1, 0.2, 0.3, 0.25, 0.15], [0.85, 0.15, 0.0, 0.0, 0.0]),
        # gamma 0 (or a terminal step): all the mass sits at the reward, here 0.3.
        (0.3, 0.0, [0.1, 0.2, 0.3, 0.2, 0.2], [0.0, 0.0, 0.7, 0.3, 0.0]),
    ],
)
def test_projection_puts_the_mass_on_the_neighbouring_atoms(reward, gamma, weights, expected):
    projected = project([reward + gamma * SUPPORT], [weights])
    np.testing.assert_allclose(projected, [expected], atol=1e-6)


def test_projection_conserves_mass_and_the_mean_inside_the_support():
    rng = np.random.default_rng(0)
    support = np.linspace(-10.0, 10.0, 51).astype(np.float32)
    weights = rng.dirichlet(np.ones(51), size=64).astype(np.float32)
    # Targets inside [-10, 10]: the projection keeps the expected return exactly (eq. 7
    # splits each atom so that its mean is kept) as well as the total probability.
    reward = rng.uniform(-1.0, 1.0, size=(64, 1)).astype(np.float32)
    gamma = rng.uniform(0.0, 0.9, size=(64, 1)).astype(np.float32)
    targets = reward + gamma * support
    projected = project(targets, weights, support)
    assert projected.shape == (64, 51) and projected.min() >= 0.0
    np.testing.assert_allclose(projected.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(
        projected @ support, np.sum(weights * targets, axis=1), rtol=0, atol=1e-4
    )
    # Targets that overshoot both ends keep their mass too: it is clipped onto the end atoms.
    wide = project(np.tile(5.0 + 3.0 * support, (64, 1)), weights, support)
    np.testing.assert_allclose(wide.sum(axis=1), 1.0, atol=1e-5)
    assert np.all(wide[:, -1] >= weights[:, 5.0 + 3.0 * support >= 10.0].sum(axis=1) - 1e-6)
    assert np.all(wide[:, 0] >= weights[:, 5.0 + 3.0 * support <= -10.0].sum(axis=1) - 1e-6)


# --- the agent's loss -----------------------------------------------------------------


@pytest.fixture(scope="module")
def cartpole_specs():
    tf_env = make_tf_env(EnvSpec("CartPole-v1"), num_envs=1, seed=0)
    return tf_env.time_step_spec(), tf_env.action_spec()


def make_c51(specs, **overrides):
    config = make_config(agent="c51", fc_layers=[16], **overrides)
    context = AgentContext(
        time_step_spec=specs[0],
        action_spec=specs[1],
        train_step=tf.Variable(0, dtype=tf.int64, name="train_step"),
        env_steps=tf_metrics.EnvironmentSteps(),
        initial_collect_steps=0,
    )
    return build_agent(config, context).agent


def transitions(rewards: np.ndarray, discount: float, seed: int = 0) -> trajectory.Trajectory:
    """[batch, 2] CartPole-shaped transitions with the given rewards."""
    rng = np.random.default_rng(seed)
    batch = len(rewards)
    shape = [batch, 2]
    return trajectory.Trajectory(
        step_type=tf.fill(shape, ts.StepType.MID),
        observation=tf.constant(rng.normal(size=[batch, 2, 4]).astype(np.float32)),
        action=tf.constant(rng.integers(0, 2, size=shape), dtype=tf.int64),
        policy_info=(),
        next_step_type=tf.fill(shape, ts.StepType.MID),
        reward=tf.constant(np.stack([rewards, rewards], axis=1).astype(np.float32)),
        discount=tf.fill(shape, np.float32(discount)),
    )


@pytest.mark.parametrize("gamma, discount", [(0.0, 1.0), (0.99, 0.0)])
def test_loss_is_the_cross_entropy_to_the_projected_reward(cartpole_specs, gamma, discount):
    # Without a bootstrap (gamma 0, or a terminal step) the target is the reward alone, so
    # it can be written down: on the atoms -2, -1, 0, 1, 2 a reward of 0.5 is half on 0
    # and half on 1, -0.25 is 1/4 on -1 and 3/4 on 0, and 3 is clipped onto 2.
    agent = make_c51(cartpole_specs, num_atoms=5, min_q_value=-2.0, max_q_value=2.0, gamma=gamma)
    np.testing.assert_allclose(agent._support.numpy(), SUPPORT)
    rewards = np.array([0.5, -0.25, 3.0, 1.0])
    targets = np.array(
        [
            [0.0, 0.0, 0.5, 0.5, 0.0],
            [0.0, 0.25, 0.75, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.0, 1.0],
            [0.0, 0.0, 0.0, 1.0, 0.0],
        ]
    )
    batch = transitions(rewards, discount)
    logits = agent._q_network(batch.observation[:, 0])[0].numpy()  # [batch, actions, atoms]
    taken = logits[np.arange(4), batch.action.numpy()[:, 0]]
    log_probs = taken - np.log(np.exp(taken).sum(axis=1, keepdims=True))
    expected = np.mean(-np.sum(targets * log_probs, axis=1))
    # train() returns the loss computed before its update.
    assert float(agent.train(batch).loss) == pytest.approx(expected, rel=1e-5)


def test_bootstrapped_target_follows_the_target_networks_best_action(cartpole_specs):
    agent = make_c51(cartpole_specs, num_atoms=5, min_q_value=-2.0, max_q_value=2.0, gamma=0.5)
    batch = transitions(np.full(6, 0.5), discount=1.0, seed=1)
    obs = batch.observation.numpy()
    logits = agent._q_network(obs[:, 0])[0].numpy()
    next_logits = agent._target_q_network(obs[:, 1])[0].numpy()
    next_probs = np.exp(next_logits) / np.exp(next_logits).sum(axis=-1, keepdims=True)
    best = np.argmax(next_probs @ SUPPORT, axis=1)  # greedy on the expected return
    targets = project(
        np.tile(0.5 + 0.5 * SUPPORT, (6, 1)), next_probs[np.arange(6), best]
    )  # computed with the projection checked above
    taken = logits[np.arange(6), batch.action.numpy()[:, 0]]
    log_probs = taken - np.log(np.exp(taken).sum(axis=1, keepdims=True))
    expected = np.mean(-np.sum(targets * log_probs, axis=1))
    assert float(agent.train(batch).loss) == pytest.approx(expected, rel=1e-5)


def windows(batch: int, steps: int, seed: int = 0, first_is_last: int = -1):
    """[batch, steps] CartPole-shaped windows with random rewards and discounts 1."""
    rng = np.random.default_rng(seed)
    step_type = np.full([batch, steps], ts.StepType.MID, np.int32)
    if first_is_last >= 0:
        step_type[first_is_last, 0] = ts.StepType.LAST
    return trajectory.Trajectory(
        step_type=tf.constant(step_type),
        observation=tf.constant(rng.normal(size=[batch, steps, 4]).astype(np.float32)),
        action=tf.constant(rng.integers(0, 2, size=[batch, steps]), dtype=tf.int64),
        policy_info=(),
        next_step_type=tf.fill([batch, steps], ts.StepType.MID),
        reward=tf.constant(rng.normal(size=[batch, steps]).astype(np.float32)),
        discount=tf.ones([batch, steps]),
    )


@pytest.mark.parametrize("n_step", [1, 3])
def test_loss_matches_tf_agents_own_c51_loss_where_that_one_is_right(cartpole_specs, n_step):
    """No boundary and no weights: the same number as CategoricalDqnAgent._loss."""
    agent = make_c51(cartpole_specs, n_step=n_step, gamma=0.9)
    batch = windows(8, n_step + 1)
    ours = agent._loss(batch, gamma=0.9)
    theirs = categorical_dqn_agent.CategoricalDqnAgent._loss(agent, batch, gamma=0.9)
    assert float(ours.loss) == pytest.approx(float(theirs.loss), rel=1e-6)
    assert ours.extra.td_error.shape == (8,) and theirs.extra.td_error == ()


def test_weights_scale_each_samples_cross_entropy_and_boundaries_are_masked(cartpole_specs):
    agent = make_c51(cartpole_specs, gamma=0.9)
    batch = windows(6, 2, seed=3, first_is_last=2)
    errors = agent._loss(batch, gamma=0.9).extra.td_error.numpy()
    assert errors[2] == 0.0 and np.all(errors[[0, 1, 3, 4, 5]] > 0)
    weights = tf.constant([1.0, 0.5, 1.0, 0.0, 2.0, 0.25])
    weighted = agent._loss(batch, gamma=0.9, weights=weights)
    assert float(weighted.loss) == pytest.approx(np.mean(weights.numpy() * errors), rel=1e-6)
    # TF-Agents' own loss ignores the weights and trains on the boundary window.
    theirs = categorical_dqn_agent.CategoricalDqnAgent._loss(
        agent, batch, gamma=0.9, weights=weights
    )
    assert float(theirs.loss) != pytest.approx(float(weighted.loss), rel=1e-3)


def test_a_window_of_the_wrong_length_is_refused(cartpole_specs):
    agent = make_c51(cartpole_specs, n_step=3)
    with pytest.raises(ValueError, match="windows of 4 steps, not 2"):
        agent._loss(windows(4, 2))
