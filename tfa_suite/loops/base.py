"""What the session needs from a loop, written down: the `Loop` protocol and its defaults.

A loop owns the data flow from the environment to the agent's train step: the compiled
collect-train function and whatever stores data between them (a replay buffer, a rollout,
Ray actors). The session (`tfa_suite.run.session`) drives any loop through this interface
alone and never asks which kind it has:

- `prefill_steps()` / `prefill(n)`: collection before the first train step (the replay
  loop's initial collection, or its refill after a resume); 0 and a no-op for others;
- `iterations_within(remaining)` and `run(k)`: k iterations of collect-and-train per
  compiled call, sized so a call ends within one iteration past the next event;
- `checkpoint_objects()`: the loop's state that a resume needs (metrics, replay);
- the `env_steps`, `episodes` and `train_return` metrics;
- `compile()`: traces the compiled function up front and returns its seconds, or None
  for a loop that traces on its first call;
- `start()` / `close()`: processes the loop needs (Ray actors), started before the run dir
  is opened and ended with the run, whatever happened;
- `perf_fields` / `perf_values()`: the loop's own throughput columns in metrics.csv;
- `resume_note()`: what a resume restored of the loop's data, for the resume line.

`LoopBase` gives the optional parts their defaults; a loop subclasses it.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol, runtime_checkable

import tensorflow as tf
from tf_agents.environments import tf_environment
from tf_agents.metrics import tf_metrics

from tfa_suite.agents.interface import BuiltAgent


@dataclasses.dataclass(frozen=True)
class LoopInputs:
    """What every loop is built from, besides its own config section."""

    tf_env: tf_environment.TFEnvironment
    built: BuiltAgent
    env_steps: tf_metrics.EnvironmentSteps
    device: str = "/CPU:0"
    # The run's --num_env_steps (schedules that end with the run) and --agent (messages).
    num_env_steps: int = 0
    agent_name: str = ""


@runtime_checkable
class Loop(Protocol):
    env_steps: tf_metrics.EnvironmentSteps
    episodes: tf_metrics.NumberOfEpisodes
    train_return: tf_metrics.AverageReturnMetric
    perf_fields: tuple[str, ...]

    def checkpoint_objects(self) -> dict[str, tf.Module]: ...

    def prefill_steps(self) -> int: ...

    def prefill(self, num_env_steps: int) -> int: ...

    def iterations_within(self, remaining: int) -> int: ...

    def run(self, num_iterations: int) -> float: ...

    def compile(self) -> float | None: ...

    def start(self) -> None: ...

    def close(self) -> None: ...

    def perf_values(self) -> dict[str, float]: ...

    def resume_note(self) -> str: ...


class LoopBase(tf.Module):
    """The `Loop` protocol's defaults: nothing before training, no processes, no extra
    columns, tracing on the first call. A subclass sets the three metrics and implements
    `checkpoint_objects`, `iterations_within` and `run`."""

    perf_fields: tuple[str, ...] = ()
    env_steps: tf_metrics.EnvironmentSteps
    episodes: tf_metrics.NumberOfEpisodes
    train_return: tf_metrics.AverageReturnMetric

    def prefill_steps(self) -> int:
        return 0

    def prefill(self, num_env_steps: int) -> int:
        return int(self.env_steps.result())

    def compile(self) -> float | None:
        return None

    def start(self) -> None:
        return None

    def close(self) -> None:
        return None

    def perf_values(self) -> dict[str, float]:
        return {}

    def resume_note(self) -> str:
        return ""


def training_episode_metrics(
    num_envs: int,
) -> tuple[tf_metrics.NumberOfEpisodes, tf_metrics.AverageReturnMetric]:
    """The finished-episode count and the mean return of the last ones, over `num_envs` rows."""
    return tf_metrics.NumberOfEpisodes(), tf_metrics.AverageReturnMetric(
        batch_size=num_envs, buffer_size=max(10, num_envs)
    )
