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

from tfa_suite.agents.dqn import check_specs, make_optimizer, observation_preprocessing
from tfa_suite.agents.registry import register_agent
from tfa_suite.config import TrainConfig, parse_conv_layers


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
        preprocessing_layers=observation_preprocessing(time_step_spec.observation),
        conv_layer_params=parse_conv_layers(config.conv_layers) or None,
        fc_layer_params=tuple(config.fc_layers),
    )
    agent = categorical_dqn_agent.CategoricalDqnAgent(
        time_step_spec,
        action_spec,
        categorical_q_network=network,
        optimizer=make_optimizer(config),
        min_q_value=config.min_q_value,
        max_q_value=config.max_q_value,
        epsilon_greedy=epsilon_fn,
        n_step_update=config.n_step,
        target_update_tau=config.target_update_tau,
        target_update_period=config.target_update_period,
        gamma=config.gamma,
        gradient_clipping=config.gradient_clipping or None,
        train_step_counter=train_step_counter,
    )
    agent.initialize()
    return agent
