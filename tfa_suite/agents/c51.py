"""C51: categorical DQN (Bellemare et al. 2017) with TF-Agents' CategoricalDqnAgent.

The course material's Atari setup used it. It shares DQN's spec checks, observation
preprocessing and optimizers; the network predicts a distribution over `num_atoms`
returns between `min_q_value` and `max_q_value` for every action.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf
from tf_agents.agents.categorical_dqn import categorical_dqn_agent
from tf_agents.networks import categorical_q_network
from tf_agents.trajectories import time_step as ts
from tf_agents.typing import types

from tfa_suite.agents.dqn import agent_kwargs, check_specs, network_kwargs
from tfa_suite.agents.registry import register_agent
from tfa_suite.config import TrainConfig


@register_agent("c51")
def build_c51(
    config: TrainConfig,
    time_step_spec: ts.TimeStep,
    action_spec: types.NestedTensorSpec,
    train_step_counter: tf.Variable,
    epsilon_fn: Callable[[], tf.Tensor],
) -> categorical_dqn_agent.CategoricalDqnAgent:
    check_specs(time_step_spec.observation, action_spec)
    network = categorical_q_network.CategoricalQNetwork(
        time_step_spec.observation,
        action_spec,
        num_atoms=config.num_atoms,
        **network_kwargs(config, time_step_spec.observation),
    )
    agent = categorical_dqn_agent.CategoricalDqnAgent(
        time_step_spec,
        action_spec,
        categorical_q_network=network,
        min_q_value=config.min_q_value,
        max_q_value=config.max_q_value,
        **agent_kwargs(config, train_step_counter, epsilon_fn),
    )
    agent.initialize()
    return agent
