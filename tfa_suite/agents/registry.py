"""The name -> agent mapping behind `--agent`, and the small interface between agent and loop.

An agent module registers itself with `register_agent(AgentSpec(...))`: its name, its
config section, the loop kind it trains on, the kind of action it takes and a builder.
The loop never asks which agent it runs; it asks the `BuiltAgent` for what it needs
(policies, the sequence length it trains on, the scalars to log).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import tensorflow as tf
from tf_agents.agents import tf_agent
from tf_agents.metrics import tf_metrics
from tf_agents.policies import tf_policy
from tf_agents.trajectories import time_step as ts
from tf_agents.typing import types

from tfa_suite.config import Section, TrainConfig
from tfa_suite.errors import UnsupportedSpaceError, UserError

DISCRETE, CONTINUOUS = "discrete", "continuous"
# An agent whose networks take either kind (the policy-gradient family).
ANY_ACTIONS = "discrete or continuous"


@dataclasses.dataclass(frozen=True)
class AgentContext:
    """What a builder gets from the run: specs, counters and the loop's random start."""

    time_step_spec: ts.TimeStep
    action_spec: types.NestedTensorSpec
    train_step: tf.Variable  # int64; the agent's train_step_counter
    env_steps: tf_metrics.EnvironmentSteps  # checkpointed, so schedules on it resume
    # Env steps the loop collects with `initial_collect_policy` before training.
    initial_collect_steps: int
    # Parallel envs the collect policy acts for (its batch size).
    num_envs: int = 1


@dataclasses.dataclass
class BuiltAgent:
    """A TF-Agents agent with the policies and facts the loops and the session use."""

    agent: tf_agent.TFAgent
    collect_policy: tf_policy.TFPolicy
    # Deterministic: evaluated during training and exported as the run's policy.
    greedy_policy: tf_policy.TFPolicy
    # Acts during the first `initial_collect_steps`; may be `collect_policy` itself.
    initial_collect_policy: tf_policy.TFPolicy
    # Consecutive time steps per replay sample (2 for one-step TD, n + 1 for n-step);
    # None for agents of the rollout loop, which train on whole rollouts.
    train_sequence_length: int | None
    # Name -> zero-argument function of a scalar, logged with every metrics row.
    scalars: dict[str, Callable[[], tf.Tensor]] = dataclasses.field(default_factory=dict)
    # The train step's LossInfo -> one error per sample ([B]), from which prioritized
    # replay sets priorities (DQN: the TD error). None: the agent cannot use it.
    sample_errors: Callable[[Any], tf.Tensor] | None = None
    # Rollout loop only: how one rollout ([N, T] trajectories plus the time step after
    # them) becomes the agent's training data. None: train on the rollout as collected.
    prepare_rollout: Callable[[Any, ts.TimeStep], Any] | None = None
    # Rollout loop only. True: each prepared entry carries its own targets (advantage,
    # return), so the loop may shuffle the N*T entries into minibatches (PPO, A2C).
    # False: the agent needs whole [N, T] sequences, one update per rollout (REINFORCE
    # computes its returns along time).
    rollout_entries_independent: bool = False
    # Rollout loop only: run after a rollout's last update (PPO, A2C: the observation
    # normalizer takes in the rollout only then). None: nothing.
    after_rollout_updates: Callable[[Any], Any] | None = None
    # Replay loop with --num_actors and --actor_exploration=apex only: (actor index, number
    # of actors) -> (that actor's collect policy, a few words saying how it explores), as
    # Ape-X gives each actor its own fixed epsilon. None: the agent has no such scheme.
    actor_collect_policy: Callable[[int, int], tuple[tf_policy.TFPolicy, str]] | None = None


@dataclasses.dataclass(frozen=True)
class AgentSpec:
    name: str
    config_cls: type[Section]
    loop: str  # a key of tfa_suite.loops.LOOPS
    actions: str  # DISCRETE, CONTINUOUS or ANY_ACTIONS
    build: Callable[[TrainConfig, AgentContext], BuiltAgent]
    summary: str = ""


_AGENTS: dict[str, AgentSpec] = {}


def register_agent(spec: AgentSpec) -> AgentSpec:
    if spec.name in _AGENTS:
        raise ValueError(f"agent {spec.name!r} is registered twice")
    _AGENTS[spec.name] = spec
    return spec


def agent_names() -> list[str]:
    return sorted(_AGENTS)


def unknown_agent_message(name: str) -> str:
    return f"unknown --agent {name!r}; known: {', '.join(agent_names())}"


def agent_spec(name: str) -> AgentSpec:
    if name not in _AGENTS:
        raise UserError(unknown_agent_message(name))
    return _AGENTS[name]


def action_kind(action_spec: types.NestedTensorSpec) -> str | None:
    """DISCRETE for one integer action, CONTINUOUS for one float vector, else None."""
    if not isinstance(action_spec, tf.TensorSpec):
        return None
    if action_spec.dtype.is_integer and action_spec.shape.rank == 0:
        return DISCRETE
    if action_spec.dtype.is_floating and action_spec.shape.rank == 1:
        return CONTINUOUS
    return None


_SPACES = {
    DISCRETE: "one Discrete space",
    CONTINUOUS: "one one-dimensional Box space",
    ANY_ACTIONS: "one Discrete or one-dimensional Box space",
}


def check_action_spec(spec: AgentSpec, env: str, action_spec: types.NestedTensorSpec) -> None:
    """Refuses an env whose actions the agent cannot take, naming the agents that can."""
    kind = action_kind(action_spec)
    if kind == spec.actions or (spec.actions == ANY_ACTIONS and kind is not None):
        return
    if kind is None:
        raise UnsupportedSpaceError(
            f"--agent={spec.name} needs {spec.actions} actions ({_SPACES[spec.actions]}), "
            f"but {env}'s action spec is {action_spec}"
        )
    fitting = [n for n, s in sorted(_AGENTS.items()) if s.actions in (kind, ANY_ACTIONS)]
    raise UnsupportedSpaceError(
        f"--agent={spec.name} takes {spec.actions} actions, but {env} has {kind} actions "
        f"({action_spec.dtype.name} {action_spec.shape}); agents for {kind} actions: "
        f"{', '.join(fitting)}"
    )


def build_agent(config: TrainConfig, context: AgentContext) -> BuiltAgent:
    spec = agent_spec(config.run.agent)
    check_action_spec(spec, config.run.env, context.action_spec)
    return spec.build(config, context)
