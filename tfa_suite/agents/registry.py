"""The name -> builder mapping behind `--agent`."""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf
from tf_agents.agents import tf_agent
from tf_agents.trajectories import time_step as ts
from tf_agents.typing import types

from tfa_suite.config import TrainConfig
from tfa_suite.errors import UserError

# (config, time_step_spec, action_spec, train_step_counter, epsilon_fn) -> agent
AgentBuilder = Callable[
    [TrainConfig, ts.TimeStep, types.NestedTensorSpec, tf.Variable, Callable[[], tf.Tensor]],
    tf_agent.TFAgent,
]

_BUILDERS: dict[str, AgentBuilder] = {}


def register_agent(name: str) -> Callable[[AgentBuilder], AgentBuilder]:
    def decorator(builder: AgentBuilder) -> AgentBuilder:
        _BUILDERS[name] = builder
        return builder

    return decorator


def build_agent(
    config: TrainConfig,
    time_step_spec: ts.TimeStep,
    action_spec: types.NestedTensorSpec,
    train_step_counter: tf.Variable,
    epsilon_fn: Callable[[], tf.Tensor],
) -> tf_agent.TFAgent:
    if config.agent not in _BUILDERS:
        raise UserError(f"unknown --agent {config.agent!r}; known: {', '.join(sorted(_BUILDERS))}")
    return _BUILDERS[config.agent](
        config, time_step_spec, action_spec, train_step_counter, epsilon_fn
    )
