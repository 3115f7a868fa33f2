"""The collecting side of `--num_actors`: what runs inside each Ray actor process.

`CollectWorker` is a plain class; `tfa_suite.loops.ray.pool` turns it into a Ray actor with
`ray.remote(CollectWorker)`, so this module imports neither Ray nor, until an instance is
made, TensorFlow. Each worker holds

- its own batched training env (the run's env, `--num_envs` copies, its own seeds) and
- the agent built exactly as the learner builds it, used only for its collect policies,

both made by the run's `ActorRecipe`: the run's config as JSON and the function that
builds from it, which the run layer supplies (loops do not know how agents are named).

and answers `collect` calls: load the learner's policy weights if their version is new,
step the env a fixed number of batched steps in one compiled `tf.while_loop`, and return
the time-major [T, num_envs] trajectory fields as numpy arrays for the learner's replay.

Why a fixed T instead of TF-Agents' `DynamicStepDriver`: the driver counts only
non-boundary steps, so its output length varies, and the learner adds one round of every
actor's segment at once (one replay row per actor env), which needs equal lengths.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
from collections.abc import Callable
from typing import Any

from tfa_suite.loops.ray.runtime import failure_line

# TensorFlow's thread pools are sized when its runtime starts; one thread each keeps N
# actors from oversubscribing the cores the learner trains on.
THREADS_PER_ACTOR = 1


def resident_bytes() -> int | None:
    """This process's resident memory (Linux), reported with `describe`."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


@dataclasses.dataclass(frozen=True)
class CollectorParts:
    """What an actor collects with: its batched env, the agent and the env-step counter
    that the agent's schedules (DQN's epsilon) read."""

    env: Any  # a TFEnvironment
    backend: str
    built: Any  # a tfa_suite.agents.BuiltAgent
    env_steps: Any  # a tf_agents EnvironmentSteps metric


@dataclasses.dataclass(frozen=True)
class ActorRecipe:
    """How an actor process builds its parts: `build(config_json, seed)`, a module-level
    function that Ray sends by reference, on the run's config as JSON."""

    config_json: dict[str, Any]
    build: Callable[[dict[str, Any], int], CollectorParts]
    run_seed: int
    num_envs: int


class CollectWorker:
    """One actor: a batched env and the collect policies, collecting on request."""

    def __init__(
        self,
        recipe: ActorRecipe,
        index: int,
        num_actors: int,
        seed: int,
        exploration: str,
    ):
        # Importing this module ran tfa_suite/__init__.py, which selects Keras 2; Ray's
        # runtime_env sets it too (`runtime.worker_env_vars`).
        os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(THREADS_PER_ACTOR)
        tf.config.threading.set_inter_op_parallelism_threads(THREADS_PER_ACTOR)

        self._tf = tf
        self.index = index
        tf.random.set_seed(seed)
        parts = recipe.build(recipe.config_json, seed)
        self._env, self.backend, self._env_steps = parts.env, parts.backend, parts.env_steps
        built = parts.built
        self._data_spec = built.agent.collect_data_spec
        # Every collect policy acts through the greedy policy's variables (DQN's Q-network,
        # the actor-critics' actor); those are what the learner sends.
        self._variables = built.greedy_policy.variables()
        self._version = -1
        collect_policy, self.exploration = built.collect_policy, "the agent's own schedule"
        if exploration == "apex":
            collect_policy, self.exploration = built.hooks.actor_collect_policy(index, num_actors)
        self._collect = {
            False: self._make_collect(collect_policy),
            True: self._make_collect(built.initial_collect_policy),
        }

    def describe(self) -> dict[str, Any]:
        """Where this actor runs and how it explores (printed by the learner at start)."""
        return dict(
            pid=os.getpid(),
            host=socket.gethostname(),
            backend=self.backend,
            exploration=self.exploration,
            rss_bytes=resident_bytes(),
        )

    def _make_collect(self, policy):  # noqa: ANN001, ANN202
        from tfa_suite.loops.collect import collect_fixed_steps  # imports TensorFlow

        tf = self._tf
        if tf.nest.flatten(policy.policy_state_spec):
            raise ValueError("actors collect with policies without recurrent state")

        @tf.function(autograph=False)
        def collect(num_steps: tf.Tensor):  # noqa: ANN202
            with tf.device("/CPU:0"):
                # self._env_steps: schedules advance within the call, as in one process.
                entries, _ = collect_fixed_steps(
                    self._env, policy, num_steps, [self._env_steps], spec=self._data_spec
                )
            return tf.nest.flatten(entries)  # each [T, envs, ...]

        return collect

    def collect(
        self,
        num_steps: int,
        initial: bool,
        env_steps: int,
        weights: tuple[int, list[Any]],
    ) -> dict[str, Any]:
        """`num_steps` batched steps; returns the trajectory fields and the call's figures.

        `weights` is (version, [ObjectRef of the variables' values]): the reference sits in
        a list so Ray passes it unresolved and the values are fetched only when the version
        is new. `env_steps` is the learner's count where this call's data will start.
        """
        start = time.monotonic()
        version, (ref,) = weights
        if version != self._version:
            import ray

            self._load(ray.get(ref))
            self._version = version
        self._env_steps.environment_steps.assign(env_steps)
        try:
            items = self._collect[bool(initial)](self._tf.constant(num_steps))
        except self._tf.errors.OpError as e:
            # A plain exception with one line crosses the process boundary cleanly.
            raise RuntimeError(
                f"the environment failed while stepping: {failure_line(e)}"
            ) from None
        arrays = [x.numpy() for x in items]
        counted = int(self._env_steps.result()) - env_steps
        return dict(items=arrays, env_steps=counted, seconds=time.monotonic() - start)

    def _load(self, values: list[Any]) -> None:
        if len(values) != len(self._variables):
            raise ValueError(
                f"the learner sent {len(values)} policy variables; this actor's policy has "
                f"{len(self._variables)}"
            )
        for variable, value in zip(self._variables, values):
            variable.assign(value)
