"""The rollout loop: collect a fixed rollout, train on it, discard it; all in one tf.function.

Used by the on-policy agents (REINFORCE, A2C, PPO). One call of `RolloutLoop.run(k)` runs
k iterations of

    collect exactly `rollout_steps` batched steps of the `num_envs` envs with the
        collect policy (N x T trajectory entries, kept in TensorArrays);
    the agent's `RolloutHooks.prepare` (PPO, A2C: values, GAE advantages and returns);
    `num_epochs` passes over the rollout: the N*T entries shuffled into minibatches of
        `minibatch_size`, one `agent.train` per minibatch (PPO); or one `agent.train` on
        the whole [N, T] rollout (A2C, REINFORCE);

inside a single `tf.function`. With a TF-native environment nothing in that graph leaves
the device (the graph-purity test checks it); with a gymnasium or Atari environment,
TFPyEnvironment's `py_function` is the only host round trip, once per batched env step.
No rollout outlives a call, so every checkpoint falls on a rollout boundary, and resuming
needs no prefill: the next call starts a fresh rollout from the env's current state.

Why not TF-Agents' `DynamicStepDriver` with a replay buffer: the driver counts only
non-boundary steps, so its rollouts vary in length, and a fixed [N, T] shape is what lets
the minibatches and the whole loop compile once. The loop below is that driver's body
(policy action, env step, observers) run exactly T times.

Why not TF-Agents' PPO training as is: `PPOAgent.train` runs every epoch on the whole
batch (tensorflow/agents#805) and advances its step counter once per epoch (#357). Here
the PPO agent is built with `num_epochs=1` and advantages computed outside `train`, and
the loop calls `train` once per minibatch, so `train_steps` counts gradient steps.
"""

from __future__ import annotations

import dataclasses
import time
from typing import ClassVar

import tensorflow as tf
from tf_agents.trajectories import trajectory as trajectory_lib

from tfa_suite.agents.interface import RolloutHooks
from tfa_suite.config import LoopSection, RunConfig, _field, need
from tfa_suite.errors import UserError
from tfa_suite.loops.base import LoopBase, LoopInputs, training_episode_metrics
from tfa_suite.loops.collect import collect_fixed_steps


@dataclasses.dataclass
class RolloutConfig(LoopSection):
    KIND: ClassVar[str] = "rollout"

    rollout_steps: int = _field(
        128, "batched env steps per rollout: each of the --num_envs envs takes this many"
    )
    num_epochs: int = _field(1, "passes over each rollout (PPO; 1 for A2C and REINFORCE)")
    minibatch_size: int = _field(
        0,
        "rollout entries per gradient step, drawn without replacement each epoch (PPO); "
        "0 trains on the whole rollout at once",
    )

    def validate(self, run: RunConfig) -> None:
        need(self.rollout_steps >= 1, "--rollout_steps must be >= 1")
        need(self.num_epochs >= 1, "--num_epochs must be >= 1")
        need(self.minibatch_size >= 0, "--minibatch_size must be >= 0 (0: the whole rollout)")
        entries = self.rollout_steps * run.num_envs
        need(
            self.minibatch_size <= entries,
            f"--minibatch_size ({self.minibatch_size}) must be <= the rollout's "
            f"--rollout_steps x --num_envs = {entries} entries",
        )
        need(
            self.minibatch_size == 0 or entries % self.minibatch_size == 0,
            f"--minibatch_size ({self.minibatch_size}) must divide the rollout's "
            f"--rollout_steps x --num_envs = {entries} entries, so every entry is used once "
            "per epoch",
        )


# TensorFlow's graph optimizer breaks the minibatch loops (the epoch and minibatch
# tf.while_loops around the train step) on image observations: the run stops at its first
# update with "AlreadyExistsError: Resource __per_step_0/.../ArithmeticOptimizer/
# AddOpsRewrite_add_N/tmp_var" (tensorflow/tensorflow#23780, #37740). Grappler's arithmetic
# stage merges a sum of gradients into one AddN, a later stage turns that AddN into a
# temporary variable, and two iterations of the nested loops create it under one name.
# Measured with PPO on Pong's 210x160x2 frames (67,200 bytes) and 200-unit layers: 8x2048
# rollouts as one minibatch, and 8x128 rollouts in 4 minibatches of 256, crash; smaller
# rollouts in 1 or 2 minibatches, or 16-unit layers, ran. Never seen on small observations.
# The only switch is process-wide, so it is turned off only for the runs that need it.
LARGE_OBSERVATION_BYTES = 10_000


def observation_bytes(spec) -> int:  # noqa: ANN001
    """Bytes of one observation of the (possibly nested) spec."""
    return sum(s.shape.num_elements() * tf.as_dtype(s.dtype).size for s in tf.nest.flatten(spec))


def needs_addn_workaround(observation_spec, hooks: RolloutHooks) -> bool:  # noqa: ANN001
    """Whether the loop runs minibatch loops on large observations (see above)."""
    return (
        hooks.entries_independent and observation_bytes(observation_spec) >= LARGE_OBSERVATION_BYTES
    )


def minibatch_indices(entries: int, size: int) -> tf.Tensor:
    """One epoch's minibatches: a fresh permutation of range(entries) as [entries // size,
    size] rows, so every entry is trained on exactly once per epoch (`size` divides it)."""
    return tf.reshape(tf.random.shuffle(tf.range(entries)), [entries // size, size])


class RolloutLoop(LoopBase):
    """Collection into a fixed [N, T] rollout and the compiled collect-train function."""

    def __init__(self, cfg: RolloutConfig, inputs: LoopInputs):
        super().__init__(name="rollout_loop")
        built = inputs.built
        hooks = built.hooks
        if not isinstance(hooks, RolloutHooks):
            raise TypeError(f"the rollout loop needs RolloutHooks, not {type(hooks).__name__}")
        _check_updates(cfg, hooks, inputs.agent_name)
        if tf.nest.flatten(built.collect_policy.policy_state_spec):
            raise UserError(
                f"--agent={inputs.agent_name}: the rollout loop needs a policy without "
                "recurrent state"
            )
        if needs_addn_workaround(inputs.tf_env.observation_spec(), hooks):
            tf.config.optimizer.set_experimental_options({"arithmetic_optimization": False})
            print(
                "note: TensorFlow's arithmetic graph optimization is off for this process: "
                "it breaks the minibatch loops on image observations (see loops/rollout.py)",
                flush=True,
            )
        self._cfg = cfg
        self._env = inputs.tf_env
        self._num_envs = inputs.tf_env.batch_size
        self._hooks = hooks
        self._agent = built.agent
        self._policy = built.collect_policy
        self._device = inputs.device
        self.env_steps = inputs.env_steps
        self.episodes, self.train_return = training_episode_metrics(self._num_envs)
        self._observers = [self.env_steps, self.episodes, self.train_return]
        entries = cfg.rollout_steps * self._num_envs
        self._minibatch = cfg.minibatch_size or entries
        self._minibatches = entries // self._minibatch

    # --- the session's interface -----------------------------------------------------

    def checkpoint_objects(self) -> dict[str, tf.Module]:
        # No rollout survives a call, so only the training-return metrics need saving.
        return dict(episodes=self.episodes, train_return=self.train_return)

    def iterations_within(self, remaining: int) -> int:
        """Rollouts for one call that do not pass the next event by a whole rollout.

        A rollout counts at most `rollout_steps x num_envs` env steps (boundary entries,
        where an env restarts, are not counted), so sizing by that ends every call within
        one rollout of its event.
        """
        return max(1, remaining // (self._cfg.rollout_steps * self._num_envs))

    def compile(self) -> float:
        """Traces the collect-train function once, before the first call; returns seconds.

        Every later call, whatever its number of rollouts, reuses this one trace.
        """
        start = time.monotonic()
        self.collect_train.get_concrete_function(tf.TensorSpec([], tf.int64))
        return time.monotonic() - start

    def run(self, num_iterations: int) -> float:
        """Runs `num_iterations` rollouts and their training; returns the mean loss."""
        return float(self.collect_train(tf.constant(num_iterations, tf.int64)))

    # --- the compiled loop -------------------------------------------------------------

    def _collect(self) -> tuple[trajectory_lib.Trajectory, object]:
        """Exactly `rollout_steps` batched steps: a [N, T] rollout and the time step after."""
        entries, time_step = collect_fixed_steps(
            self._env, self._policy, self._cfg.rollout_steps, self._observers
        )
        # Agents take batch-major [N, T, ...].
        rollout = tf.nest.map_structure(lambda x: tf.experimental.numpy.swapaxes(x, 0, 1), entries)
        return rollout, time_step

    def _train_on(self, rollout: trajectory_lib.Trajectory, time_step) -> tf.Tensor:  # noqa: ANN001
        """The agent's updates on one rollout; returns their mean loss."""
        hooks = self._hooks
        experience = rollout
        if hooks.prepare is not None:
            experience = hooks.prepare(rollout, time_step)
        loss = self._updates(experience)
        if hooks.after_updates is not None:
            with tf.control_dependencies([loss]):
                done = hooks.after_updates(rollout)
            with tf.control_dependencies([done]):
                loss = tf.identity(loss)
        return loss

    def _updates(self, experience: trajectory_lib.Trajectory) -> tf.Tensor:
        if not self._hooks.entries_independent:
            return self._agent.train(experience).loss

        # Independent entries: [N, T, ...] -> [N*T, 1, ...], so each entry is a sequence of
        # one step, shuffled into minibatches afresh every epoch.
        entries = self._cfg.rollout_steps * self._num_envs
        flat = tf.nest.map_structure(
            lambda x: tf.reshape(x, [entries, 1, *x.shape[2:]]), experience
        )
        size, count = self._minibatch, self._minibatches

        def epoch(e: tf.Tensor, loss_sum: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            order = minibatch_indices(entries, size)

            def minibatch(b: tf.Tensor, loss_sum: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
                batch = tf.nest.map_structure(lambda x: tf.gather(x, order[b]), flat)
                return b + 1, loss_sum + self._agent.train(batch).loss

            _, loss_sum = tf.while_loop(
                lambda b, _: b < count, minibatch, (tf.constant(0), loss_sum)
            )
            return e + 1, loss_sum

        _, loss_sum = tf.while_loop(
            lambda e, _: e < self._cfg.num_epochs, epoch, (tf.constant(0), tf.constant(0.0))
        )
        return loss_sum / float(self._cfg.num_epochs * count)

    # autograph=False: the loops are explicit tf.while_loops, and letting autograph convert
    # TF-Agents' policies and agents recursively costs seconds of tracing. The count is a
    # tensor, so this traces once for any number of rollouts.
    @tf.function(autograph=False)
    def collect_train(self, num_iterations: tf.Tensor) -> tf.Tensor:
        def iteration(i: tf.Tensor, loss_sum: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            rollout, time_step = self._collect()
            return i + 1, loss_sum + self._train_on(rollout, time_step)

        with tf.device(self._device):
            _, loss_sum = tf.while_loop(
                lambda i, _: i < num_iterations,
                iteration,
                (tf.constant(0, num_iterations.dtype), tf.constant(0.0)),
            )
        return loss_sum / tf.maximum(tf.cast(num_iterations, tf.float32), 1.0)


def _check_updates(cfg: RolloutConfig, hooks: RolloutHooks, agent: str) -> None:
    """An agent of one update per rollout takes no epochs and no minibatches."""
    if not (hooks.single_update or not hooks.entries_independent):
        return
    if cfg.num_epochs != 1 or cfg.minibatch_size != 0:
        whole = (
            " on the whole [--num_envs, --rollout_steps] batch;"
            if not hooks.entries_independent
            else ":"
        )
        raise UserError(
            f"--agent={agent} makes one update per rollout{whole} it takes --num_epochs=1 "
            f"and --minibatch_size=0, not {cfg.num_epochs} and {cfg.minibatch_size}"
            + hooks.single_update_note
        )
