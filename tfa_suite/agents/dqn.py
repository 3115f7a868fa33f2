"""DQN and double DQN: TF-Agents' QNetwork with DqnAgent / DdqnAgent."""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf
from tf_agents.agents.dqn import dqn_agent
from tf_agents.networks import q_network
from tf_agents.trajectories import time_step as ts
from tf_agents.typing import types
from tf_agents.utils import common

from tfa_suite.agents.registry import register_agent
from tfa_suite.config import TrainConfig
from tfa_suite.errors import UnsupportedSpaceError


def check_specs(
    observation_spec: types.NestedTensorSpec, action_spec: types.NestedTensorSpec
) -> None:
    """DQN needs one discrete action and one array observation; say which part is wrong."""
    if (
        not isinstance(action_spec, tf.TensorSpec)
        or action_spec.shape.rank != 0
        or (not action_spec.dtype.is_integer)
    ):
        raise UnsupportedSpaceError(
            f"DQN needs a Discrete action space, but the env's action spec is {action_spec}"
        )
    if not isinstance(observation_spec, tf.TensorSpec) or observation_spec.shape.rank < 1:
        raise UnsupportedSpaceError(
            "DQN needs an array (Box) observation space, but the env's observation spec is "
            f"{observation_spec}"
        )


@register_agent("dqn")
def build_dqn(
    config: TrainConfig,
    time_step_spec: ts.TimeStep,
    action_spec: types.NestedTensorSpec,
    train_step_counter: tf.Variable,
    epsilon_fn: Callable[[], tf.Tensor],
) -> dqn_agent.DqnAgent:
    check_specs(time_step_spec.observation, action_spec)
    q_net = q_network.QNetwork(
        time_step_spec.observation,
        action_spec,
        # Float casts integer observations (e.g. MultiBinary) before the first Dense layer.
        preprocessing_layers=tf.keras.layers.Lambda(lambda x: tf.cast(x, tf.float32)),
        fc_layer_params=tuple(config.fc_layers),
    )
    agent_cls = dqn_agent.DdqnAgent if config.double_dqn else dqn_agent.DqnAgent
    loss_fn = (
        common.element_wise_huber_loss
        if config.loss == "huber"
        else common.element_wise_squared_loss
    )
    agent = agent_cls(
        time_step_spec,
        action_spec,
        q_network=q_net,
        optimizer=tf.keras.optimizers.Adam(learning_rate=config.learning_rate),
        epsilon_greedy=epsilon_fn,
        n_step_update=config.n_step,
        target_update_tau=config.target_update_tau,
        target_update_period=config.target_update_period,
        td_errors_loss_fn=loss_fn,
        gamma=config.gamma,
        gradient_clipping=config.gradient_clipping or None,
        train_step_counter=train_step_counter,
    )
    agent.initialize()
    return agent
