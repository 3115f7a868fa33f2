"""Discrete observations (gymnasium Discrete and MultiDiscrete): tabular Q-learning indexes
them, the network agents one-hot them, and the export acts on the raw integers."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.metrics import tf_metrics
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts

from tfa_suite.agents import AgentContext
from tfa_suite.agents.encoding import OneHotObservation, is_discrete
from tfa_suite.agents.tabular import MAX_DISCRETE_STATES, DiscreteStates
from tfa_suite.catalog import build_agent, make_config
from tfa_suite.envs.gym_adapter import make_tf_env
from tfa_suite.envs.loading import EnvSpec
from tfa_suite.errors import UnsupportedSpaceError, UserError
from tfa_suite.policy.handle import load_policy
from tfa_suite.run.train import train

DETERMINISTIC = '{"is_slippery": false}'


def discrete(n: int, start: int = 0) -> tensor_spec.BoundedTensorSpec:
    return tensor_spec.BoundedTensorSpec((), tf.int64, start, start + n - 1, name="observation")


def multi(nvec: list[int]) -> tensor_spec.BoundedTensorSpec:
    high = np.asarray(nvec, np.int64) - 1
    return tensor_spec.BoundedTensorSpec((len(nvec),), tf.int64, 0, high, name="observation")


def test_one_hot_of_a_discrete_value_counts_from_its_minimum():
    layer = OneHotObservation.for_spec(discrete(4, start=10))
    out = layer(tf.constant([10, 12, 13], tf.int64)).numpy()
    np.testing.assert_array_equal(out, np.eye(4)[[0, 2, 3]])
    again = OneHotObservation.from_config(layer.get_config())  # as TF-Agents copies layers
    np.testing.assert_array_equal(again(tf.constant([12], tf.int64)).numpy(), [[0, 0, 1, 0]])


def test_one_hot_of_a_multi_discrete_joins_the_components():
    layer = OneHotObservation.for_spec(multi([3, 2]))
    out = layer(tf.constant([[2, 0], [0, 1]], tf.int64)).numpy()
    np.testing.assert_array_equal(out, [[0, 0, 1, 1, 0], [1, 0, 0, 0, 1]])


def test_discrete_states_are_the_values_flattened_row_major():
    assert DiscreteStates(discrete(16))(tf.constant([0, 7, 15], tf.int64)).numpy().tolist() == [
        0, 7, 15,
    ]  # fmt: skip
    states = DiscreteStates(multi([3, 4, 5]))
    values = np.array([[0, 0, 0], [2, 3, 4], [1, 2, 3]], np.int64)
    expected = np.ravel_multi_index(values.T, (3, 4, 5))
    np.testing.assert_array_equal(states(tf.constant(values)).numpy(), expected)
    assert states.num_states == 60


def context_for(observation_spec, num_actions: int = 4) -> AgentContext:
    action = tensor_spec.BoundedTensorSpec((), tf.int64, 0, num_actions - 1, name="action")
    return AgentContext(
        time_step_spec=ts.time_step_spec(observation_spec),
        action_spec=action,
        train_step=tf.Variable(0, dtype=tf.int64),
        env_steps=tf_metrics.EnvironmentSteps(),
        initial_collect_steps=0,
    )


def test_the_tabular_agent_takes_no_grid_flags_and_names_its_limit():
    built = build_agent(
        make_config(agent="tabular_q", env="FrozenLake-v1"), context_for(discrete(16))
    )
    assert built.agent.q_table.shape == (16, 4)
    config = make_config(agent="tabular_q", env="FrozenLake-v1", grid_sizes=[4])
    with pytest.raises(UserError, match="--grid_sizes does not apply to a discrete observation"):
        build_agent(config, context_for(discrete(16)))
    huge = multi([1000, 1000, 100])
    with pytest.raises(UserError) as info:
        build_agent(make_config(agent="tabular_q", env="X"), context_for(huge))
    message = str(info.value)
    assert "100,000,000 joint states" in message and f"{MAX_DISCRETE_STATES:,} rows" in message


@pytest.mark.parametrize("agent", ["dqn", "c51", "reinforce", "a2c", "ppo"])
def test_every_network_agent_builds_on_a_discrete_observation(agent):
    env = make_tf_env(EnvSpec("FrozenLake-v1"), 1, seed=0)
    assert is_discrete(env.observation_spec())
    context = context_for(env.observation_spec())
    built = build_agent(make_config(agent=agent, env="FrozenLake-v1"), context)
    step = ts.restart(tf.constant([0, 5, 15], tf.int64), batch_size=3)
    actions = built.greedy_policy.action(step).action.numpy()
    assert actions.shape == (3,) and set(actions.tolist()) <= {0, 1, 2, 3}


def test_a_one_hot_too_wide_is_refused():
    with pytest.raises(UnsupportedSpaceError, match="at most 100,000 are allowed"):
        build_agent(make_config(agent="dqn", env="X"), context_for(multi([60_000, 60_000])))


@pytest.mark.parametrize("agent", ["tabular_q", "dqn"])
def test_a_frozen_lake_run_exports_a_policy_of_the_raw_integers(agent, tmp_path, tiny_config):
    fields = dict(fc_layers=[16]) if agent == "dqn" else {}
    config = tiny_config(
        tmp_path / agent, agent=agent, env="FrozenLake-v1", env_kwargs=DETERMINISTIC,
        backend="python", num_env_steps=300, eval_episodes=3, **fields,
    )  # fmt: skip
    result = train(config)
    policy = load_policy(tmp_path / agent)
    assert policy.action(np.int64(5)) in range(4)
    assert policy.action(np.arange(16, dtype=np.int64)).shape == (16,)
    scores = policy.evaluate(episodes=3, seed=config.run.eval_seed)
    assert scores.mean == pytest.approx(result.final_eval_mean)


def test_a_frozen_lake_table_is_checkpointed_and_resumed(tmp_path, tiny_config):
    config = tiny_config(
        tmp_path / "run", agent="tabular_q", env="FrozenLake-v1", env_kwargs=DETERMINISTIC,
        backend="python", num_env_steps=300, eval_episodes=2,
    )  # fmt: skip
    first = train(config)
    longer = train(config.replace(num_env_steps=600))
    assert longer.resumed_from_env_steps == first.env_steps
    assert longer.env_steps >= 600 and longer.train_steps > first.train_steps
