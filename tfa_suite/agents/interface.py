"""What an agent builder gets from the run, and what it hands back to the loop.

A builder is `build(section, context) -> BuiltAgent`: its own config section and an
`AgentContext` with the specs, counters and the few run facts a builder may need. The
`BuiltAgent` holds what every loop and the session use (the TF-Agents agent, its
policies, the scalars to log) plus `hooks`, typed by the loop kind it trains on:
`ReplayHooks` for the replay loop, `RolloutHooks` for the rollout loop. A loop reads only
its own kind of hooks, so it never asks which agent it runs.
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


def describe_spec(spec: Any) -> str:
    """A spec in a few words for a one-line error: dtype and shape, never its bound arrays
    (a Box of frames prints as tens of thousands of numbers)."""
    if isinstance(spec, tf.TypeSpec) and hasattr(spec, "shape") and hasattr(spec, "dtype"):
        return f"{tf.as_dtype(spec.dtype).name} {spec.shape.as_list()}"
    if tf.nest.is_nested(spec):
        return f"a nest of {len(tf.nest.flatten(spec))} specs"
    return type(spec).__name__


@dataclasses.dataclass(frozen=True)
class AgentContext:
    """What a builder gets from the run: specs, counters and the run facts it may use."""

    time_step_spec: ts.TimeStep
    action_spec: types.NestedTensorSpec
    train_step: tf.Variable  # int64; the agent's train_step_counter
    env_steps: tf_metrics.EnvironmentSteps  # checkpointed, so schedules on it resume
    # Env steps the loop collects with `initial_collect_policy` before training.
    initial_collect_steps: int
    # Parallel envs the collect policy acts for (its batch size).
    num_envs: int = 1
    # The run's --env (for env-specific defaults and messages) and --num_env_steps (for
    # schedules that end with the run).
    env_id: str = ""
    num_env_steps: int = 0


@dataclasses.dataclass(frozen=True)
class ReplayHooks:
    """What the replay loop asks of an agent."""

    # Consecutive time steps per replay sample (2 for one-step TD, n + 1 for n-step).
    train_sequence_length: int
    # The train step's LossInfo -> one error per sample ([B]), from which prioritized
    # replay sets priorities (DQN: the TD error). None: the agent cannot use it.
    sample_errors: Callable[[Any], tf.Tensor] | None = None
    # With Ray actors and --actor_exploration=apex only: (actor index, number of actors)
    # -> (that actor's collect policy, a few words saying how it explores), as Ape-X gives
    # each actor its own fixed epsilon. None: the agent has no such scheme.
    actor_collect_policy: Callable[[int, int], tuple[tf_policy.TFPolicy, str]] | None = None


@dataclasses.dataclass(frozen=True)
class RolloutHooks:
    """What the rollout loop asks of an agent."""

    # How one rollout ([N, T] trajectories plus the time step after them) becomes the
    # agent's training data. None: train on the rollout as collected.
    prepare: Callable[[Any, ts.TimeStep], Any] | None = None
    # True: each prepared entry carries its own targets (advantage, return), so the loop
    # may shuffle the N*T entries into minibatches (PPO, A2C). False: the agent needs
    # whole [N, T] sequences (REINFORCE computes its returns along time).
    entries_independent: bool = False
    # Run after a rollout's last update (PPO, A2C: the observation normalizer takes in
    # the rollout only then). None: nothing.
    after_updates: Callable[[Any], Any] | None = None
    # One update per rollout (no epochs, no minibatches); `single_update_note` ends the
    # refusal of --num_epochs/--minibatch_size with where to find them instead.
    single_update: bool = False
    single_update_note: str = ""

    def __post_init__(self) -> None:
        if self.entries_independent and self.prepare is None:
            raise ValueError("entries_independent needs a prepare step")


@dataclasses.dataclass
class BuiltAgent:
    """A TF-Agents agent with the policies and facts the loops and the session use."""

    agent: tf_agent.TFAgent
    collect_policy: tf_policy.TFPolicy
    # Deterministic: evaluated during training and exported as the run's policy.
    greedy_policy: tf_policy.TFPolicy
    # Acts during the first `initial_collect_steps`; may be `collect_policy` itself.
    initial_collect_policy: tf_policy.TFPolicy
    # What the agent's loop kind asks of it.
    hooks: ReplayHooks | RolloutHooks
    # Exported to <root_dir>/policy_sampled beside the greedy policy when set: a stochastic
    # policy worth scoring on its own (a policy gradient's sampling policy, on request).
    sampled_policy: tf_policy.TFPolicy | None = None
    # Name -> zero-argument function of a scalar, logged with every metrics row.
    scalars: dict[str, Callable[[], tf.Tensor]] = dataclasses.field(default_factory=dict)
