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
from tfa_suite.config import TrainConfig, parse_conv_layers
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


def observation_preprocessing(observation_spec: tf.TensorSpec) -> tf.keras.layers.Layer:
    """Casts observations to float inside the network; uint8 images are scaled to [0, 1].

    Scaling inside the network lets replay and environments keep one byte per pixel.
    """
    if observation_spec.dtype == tf.uint8:
        return tf.keras.layers.Lambda(lambda x: tf.cast(x, tf.float32) / 255.0)
    return tf.keras.layers.Lambda(lambda x: tf.cast(x, tf.float32))


def make_optimizer(config: TrainConfig) -> tf.keras.optimizers.Optimizer:
    if config.optimizer == "rmsprop":
        return tf.keras.optimizers.RMSprop(
            learning_rate=config.learning_rate,
            rho=0.95,
            momentum=0.0,
            epsilon=config.optimizer_epsilon,
            centered=True,
        )
    return tf.keras.optimizers.Adam(
        learning_rate=config.learning_rate, epsilon=config.optimizer_epsilon
    )


def td_loss(config: TrainConfig):  # noqa: ANN201
    return (
        common.element_wise_huber_loss
        if config.loss == "huber"
        else common.element_wise_squared_loss
    )


def network_kwargs(config: TrainConfig, observation_spec: tf.TensorSpec) -> dict:
    """The torso shared by DQN's QNetwork and C51's CategoricalQNetwork."""
    return dict(
        preprocessing_layers=observation_preprocessing(observation_spec),
        conv_layer_params=parse_conv_layers(config.conv_layers) or None,
        fc_layer_params=tuple(config.fc_layers),
    )


def agent_kwargs(
    config: TrainConfig, train_step_counter: tf.Variable, epsilon_fn: Callable[[], tf.Tensor]
) -> dict:
    """Optimizer, exploration, target-update and return settings shared by DQN and C51."""
    return dict(
        optimizer=make_optimizer(config),
        epsilon_greedy=epsilon_fn,
        n_step_update=config.n_step,
        target_update_tau=config.target_update_tau,
        target_update_period=config.target_update_period,
        gamma=config.gamma,
        gradient_clipping=config.gradient_clipping or None,
        train_step_counter=train_step_counter,
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
        **network_kwargs(config, time_step_spec.observation),
    )
    agent_cls = dqn_agent.DdqnAgent if config.double_dqn else dqn_agent.DqnAgent
    agent = agent_cls(
        time_step_spec,
        action_spec,
        q_network=q_net,
        td_errors_loss_fn=td_loss(config),
        **agent_kwargs(config, train_step_counter, epsilon_fn),
    )
    agent.initialize()
    return agent
