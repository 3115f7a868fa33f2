"""n-step windows across a truncated episode's end are left out of DQN's and C51's losses."""

import tfa_suite  # noqa: F401  isort: skip

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.agents.dqn import dqn_agent
from tf_agents.metrics import tf_metrics
from tf_agents.trajectories import time_step as ts
from tf_agents.trajectories import trajectory

from tfa_suite.agents import AgentContext
from tfa_suite.agents.c51 import C51Agent
from tfa_suite.agents.nstep import crosses_episode_end, crosses_seam, crosses_truncation
from tfa_suite.catalog import build_agent, make_config
from tfa_suite.envs.gym_adapter import make_tf_env
from tfa_suite.envs.loading import EnvSpec

F, M, L = ts.StepType.FIRST, ts.StepType.MID, ts.StepType.LAST


def windows(rows):
    """[B, n + 1] windows from (step types, next step types, discounts) per row."""
    steps, nexts, discounts = (np.array([r[i] for r in rows]) for i in range(3))
    shape = steps.shape
    rng = np.random.default_rng(0)
    return trajectory.Trajectory(
        step_type=tf.constant(steps, tf.int32),
        observation=tf.constant(rng.normal(size=[*shape, 4]).astype(np.float32)),
        action=tf.constant(rng.integers(0, 2, size=shape), tf.int64),
        policy_info=(),
        next_step_type=tf.constant(nexts, tf.int32),
        reward=tf.constant(rng.normal(size=shape).astype(np.float32)),
        discount=tf.constant(discounts, tf.float32),
    )


# n = 3: windows of 4 entries; the last entry is only the bootstrap observation.
PLAIN = ([M, M, M, M], [M, M, M, M], [1, 1, 1, 1])
TRUNCATED_INSIDE = ([M, M, L, F], [M, L, F, M], [1, 1, 1, 1])  # cut at entry 1
TERMINATED_INSIDE = ([M, M, L, F], [M, L, F, M], [1, 0, 1, 1])  # ended at entry 1
TRUNCATED_AT_BOOTSTRAP = ([M, M, M, L], [M, M, L, F], [1, 1, 1, 1])  # entry 3 is the final obs
TRUNCATED_FIRST = ([M, L, F, M], [L, F, M, M], [1, 1, 1, 1])  # cut at entry 0


def test_only_windows_running_past_a_truncation_are_found():
    rows = [PLAIN, TRUNCATED_INSIDE, TERMINATED_INSIDE, TRUNCATED_AT_BOOTSTRAP, TRUNCATED_FIRST]
    found = crosses_truncation(windows(rows)).numpy()
    np.testing.assert_array_equal(found, [False, True, False, False, True])


# A replay row cut and restarted (a resumed python env, a replaced actor): MID then FIRST.
SEAM_INSIDE = ([M, M, F, M], [M, M, M, M], [1, 1, 1, 1])
SEAM_AT_BOOTSTRAP = ([M, M, M, F], [M, M, M, M], [1, 1, 1, 1])
NEW_EPISODE = ([L, F, M, M], [F, M, M, M], [1, 1, 1, 1])  # starts at a boundary: no seam


def test_seams_are_found_but_real_episode_starts_are_not():
    rows = [SEAM_INSIDE, SEAM_AT_BOOTSTRAP, NEW_EPISODE, PLAIN, TERMINATED_INSIDE]
    batch = windows(rows)
    np.testing.assert_array_equal(crosses_seam(batch).numpy(), [True, True, False, False, False])
    assert not crosses_truncation(batch).numpy()[:2].any()  # a different case
    np.testing.assert_array_equal(
        crosses_episode_end(batch).numpy(), [True, True, False, False, False]
    )
    one_step = windows([([M, F], [M, M], [1, 1]), ([L, F], [F, M], [1, 1])])
    np.testing.assert_array_equal(crosses_seam(one_step).numpy(), [True, False])


def test_one_step_windows_never_cross_a_truncation():
    rows = [([M, L], [L, F], [1, 1]), ([M, M], [M, M], [1, 1])]
    assert not crosses_truncation(windows(rows)).numpy().any()


def build(agent: str, **fields):
    tf_env = make_tf_env(EnvSpec("CartPole-v1"), num_envs=1, seed=0)
    context = AgentContext(
        time_step_spec=tf_env.time_step_spec(),
        action_spec=tf_env.action_spec(),
        train_step=tf.Variable(0, dtype=tf.int64),
        env_steps=tf_metrics.EnvironmentSteps(),
        initial_collect_steps=0,
    )
    config = make_config(agent=agent, fc_layers=[16], n_step=3, **fields)
    return build_agent(config, context).agent


@pytest.mark.parametrize("double_dqn", [False, True])
def test_dqn_loss_leaves_out_exactly_the_crossing_windows(double_dqn):
    agent = build("dqn", double_dqn=double_dqn, gamma=0.9)
    batch = windows(
        [PLAIN, TRUNCATED_INSIDE, TERMINATED_INSIDE, TRUNCATED_AT_BOOTSTRAP, SEAM_INSIDE]
    )
    base = dqn_agent.DdqnAgent if double_dqn else dqn_agent.DqnAgent
    assert isinstance(agent, base)
    info = agent._loss(batch, gamma=0.9)
    # TF-Agents' own loss on the same batch, with the crossing window weighted 0 by hand.
    weights = tf.constant([1.0, 0.0, 1.0, 1.0, 0.0])
    expected = base._loss(agent, batch, gamma=0.9, weights=weights)
    assert float(info.loss) == pytest.approx(float(expected.loss), rel=1e-6)
    unmasked = base._loss(agent, batch, gamma=0.9)
    assert float(unmasked.loss) != pytest.approx(float(info.loss))  # the window mattered
    errors = info.extra.td_error.numpy()
    assert errors[1] == errors[4] == 0.0 and np.all(errors[[0, 2, 3]] != 0.0)  # priority 0


def test_c51_loss_leaves_out_the_crossing_windows():
    agent = build("c51", gamma=0.9)
    assert isinstance(agent, C51Agent)
    mixed = windows([PLAIN, TRUNCATED_INSIDE, TERMINATED_INSIDE])
    info = agent._loss(mixed, gamma=0.9)
    # The same loss as the batch with the crossing window's weight set to 0 explicitly,
    # which the loss averages over all 3 samples.
    kept = agent._loss(mixed, gamma=0.9, weights=tf.constant([1.0, 0.0, 1.0]))
    assert float(info.loss) == pytest.approx(float(kept.loss), rel=1e-6)
    others = tf.nest.map_structure(lambda x: tf.gather(x, [0, 2]), mixed)
    alone = agent._loss(others, gamma=0.9)
    assert float(info.loss) == pytest.approx(float(alone.loss) * 2 / 3, rel=1e-5)
    assert info.extra.td_error.numpy()[1] == 0.0
