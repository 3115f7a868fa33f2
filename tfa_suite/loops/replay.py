"""The replay loop: collect drivers, replay buffer and train steps in one tf.function.

Used by every off-policy agent (DQN, C51, DDPG, TD3, SAC). One call of
`ReplayLoop.run(k)` runs k iterations of
    collect `collect_steps_per_iteration` env steps  ->  replay.add_batch
    `train_steps_per_iteration` times: replay.get_next -> agent.train
inside a single `tf.function`, so the host is visited once per call, not once per step.
With a TF-native environment (see `tfa_suite.envs.training_env`) nothing in that graph
leaves the device; with a gymnasium environment, TFPyEnvironment's `py_function` is the
only host round trip, once per batched env step.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import tensorflow as tf
from tf_agents.drivers import dynamic_step_driver
from tf_agents.metrics import tf_metrics
from tf_agents.replay_buffers import tf_uniform_replay_buffer

from tfa_suite.agents.interface import BuiltAgent, ReplayHooks
from tfa_suite.config import LoopSection, RunConfig, _field, need
from tfa_suite.errors import UserError
from tfa_suite.loops.base import LoopBase, LoopInputs, training_episode_metrics
from tfa_suite.replay.frame_store import FrameStoreReplay
from tfa_suite.replay.prioritized import PrioritizedReplay

SAMPLERS = ("uniform", "prioritized")


@dataclasses.dataclass
class ReplayConfig(LoopSection):
    KIND: ClassVar[str] = "replay"

    replay_capacity: int = _field(100_000, "replay buffer capacity in transitions")
    batch_size: int = _field(64, "train batch size")
    initial_collect_steps: int = _field(
        1_000, "env steps collected with the agent's initial-collect policy before training"
    )
    collect_steps_per_iteration: int = _field(1, "env steps collected per iteration")
    train_steps_per_iteration: int = _field(1, "gradient steps per iteration")
    checkpoint_replay: bool = _field(
        True, "include the replay buffer in checkpoints (turn off for memory-heavy runs)"
    )
    replay_sampler: str = _field(
        "uniform", "uniform, or prioritized (proportional, Schaul et al. 2016)"
    )
    priority_alpha: float = _field(0.6, "prioritized replay: priority exponent alpha")
    priority_beta_start: float = _field(
        0.4, "prioritized replay: importance-weight exponent beta at step 0, annealed to 1"
    )
    priority_epsilon: float = _field(
        1e-6, "prioritized replay: added to |error| so that no priority is zero"
    )

    def steps_before_training(self) -> int:
        return self.initial_collect_steps

    def validate(self, run: RunConfig) -> None:
        need(
            self.replay_sampler in SAMPLERS,
            f"--replay_sampler must be uniform or prioritized, not {self.replay_sampler!r}",
        )
        need(0.0 <= self.priority_alpha <= 1.0, "--priority_alpha must be in [0, 1]")
        need(0.0 <= self.priority_beta_start <= 1.0, "--priority_beta_start must be in [0, 1]")
        need(self.priority_epsilon > 0, "--priority_epsilon must be > 0")
        need(self.batch_size >= 1, "--batch_size must be >= 1")
        need(self.initial_collect_steps >= 0, "--initial_collect_steps must be >= 0")
        need(self.collect_steps_per_iteration >= 1, "--collect_steps_per_iteration must be >= 1")
        need(self.train_steps_per_iteration >= 0, "--train_steps_per_iteration must be >= 0")
        need(
            self.collect_steps_per_iteration % run.num_envs == 0,
            f"--collect_steps_per_iteration ({self.collect_steps_per_iteration}) must be a "
            f"multiple of --num_envs ({run.num_envs}): each iteration steps every env equally",
        )
        training = self.train_steps_per_iteration > 0
        need(
            self.replay_capacity >= self.batch_size or not training,
            f"--replay_capacity ({self.replay_capacity}) must be >= --batch_size "
            f"({self.batch_size}): a batch drawn from fewer transitions repeats them",
        )
        need(
            self.replay_capacity >= self.initial_collect_steps,
            f"--replay_capacity ({self.replay_capacity}) must be >= --initial_collect_steps "
            f"({self.initial_collect_steps}): the initial collection would overwrite itself",
        )
        need(
            self.initial_collect_steps >= self.batch_size or not training,
            f"--initial_collect_steps ({self.initial_collect_steps}) must be >= --batch_size "
            f"({self.batch_size}) so the first train step has a full batch to sample",
        )


def is_frame_stack(spec: tf.TensorSpec) -> bool:
    """uint8 [H, W, K] observations: stacked frames, as from tfa_suite.envs.atari."""
    return spec.dtype == tf.uint8 and spec.shape.rank == 3 and spec.shape[-1] > 1


def make_replay(data_spec, num_envs: int, max_length: int, device: str):  # noqa: ANN001, ANN201
    """TF-Agents' uniform replay, or for stacked frames the frame-once replay.

    A stacked Atari observation is 28 KB, of which one frame (7 KB) is new per step;
    FrameStoreReplay keeps each frame once and rebuilds the stacks when it samples.
    """
    observation = data_spec.observation
    if isinstance(observation, tf.TensorSpec) and is_frame_stack(observation):
        return FrameStoreReplay(
            data_spec,
            batch_size=num_envs,
            max_length=max_length,
            stack=int(observation.shape[-1]),
            device=device,
        )
    return tf_uniform_replay_buffer.TFUniformReplayBuffer(
        data_spec, batch_size=num_envs, max_length=max_length, device=device
    )


def _check_sequence_fits(cfg: ReplayConfig, num_envs: int, length: int) -> None:
    """Every env's slice of the replay must hold (and first collect) one training sequence."""
    need(
        cfg.replay_capacity >= num_envs * length,
        f"--replay_capacity {cfg.replay_capacity} is too small for --num_envs {num_envs} "
        f"and the agent's {length}-step training sequences",
    )
    need(
        cfg.initial_collect_steps >= num_envs * length or cfg.train_steps_per_iteration == 0,
        f"--initial_collect_steps ({cfg.initial_collect_steps}) must give every one of the "
        f"{num_envs} envs at least {length} steps (the agent's training sequence) before "
        "the first sample",
    )


class ReplayCore(tf.Module):
    """The replay (one row per env that feeds it), its sampler, the training-episode
    metrics and the gradient step on a replay sample: what the single-process loop and
    the Ray learner (`tfa_suite.loops.ray.learner`) share. Collection is theirs."""

    def __init__(
        self,
        cfg: ReplayConfig,
        built: BuiltAgent,
        env_steps: tf_metrics.EnvironmentSteps,
        num_rows: int,
        inputs: LoopInputs,
    ):
        super().__init__(name="replay_core")
        hooks = built.hooks
        if not isinstance(hooks, ReplayHooks):
            raise TypeError(f"the replay loop needs ReplayHooks, not {type(hooks).__name__}")
        _check_sequence_fits(cfg, num_rows, hooks.train_sequence_length)
        self.cfg = cfg
        self.num_rows = num_rows
        self._agent = built.agent
        self.sequence_length = hooks.train_sequence_length
        self.env_steps = env_steps
        self.episodes, self.train_return = training_episode_metrics(num_rows)
        self.replay = make_replay(
            built.agent.collect_data_spec,
            num_rows,
            math.ceil(cfg.replay_capacity / num_rows),
            inputs.device,
        )
        self._sample_errors = None
        if cfg.replay_sampler == "prioritized":
            self.replay = self._prioritized(hooks, inputs)

    def _prioritized(self, hooks: ReplayHooks, inputs: LoopInputs) -> PrioritizedReplay:
        """The storage wrapped in prioritized sampling, beta annealed over the run's env steps."""
        if hooks.sample_errors is None:
            raise UserError(
                f"--replay_sampler=prioritized needs per-sample errors from the agent, and "
                f"{inputs.agent_name} gives none; use --replay_sampler=uniform"
            )
        self._sample_errors = hooks.sample_errors
        beta_start, total = self.cfg.priority_beta_start, float(max(inputs.num_env_steps, 1))

        def beta() -> tf.Tensor:
            progress = tf.minimum(tf.cast(self.env_steps.result(), tf.float32) / total, 1.0)
            return beta_start + (1.0 - beta_start) * progress

        self.priority_beta = beta
        return PrioritizedReplay(
            self.replay,
            sequence_length=hooks.train_sequence_length,
            alpha=self.cfg.priority_alpha,
            beta=beta,
            epsilon=self.cfg.priority_epsilon,
            device=inputs.device,
        )

    @property
    def observers(self) -> list:
        """What every collected step goes to: the replay, the step and episode metrics."""
        return [self.replay.add_batch, self.env_steps, self.episodes, self.train_return]

    def checkpoint_objects(self) -> dict[str, tf.Module]:
        objects = dict(episodes=self.episodes, train_return=self.train_return)
        if self.cfg.checkpoint_replay:
            objects["replay"] = self.replay
        return objects

    def prefill_steps(self) -> int:
        """Env steps to collect before training: the initial collection, or after a resume
        without a checkpointed replay, the refill to the same size."""
        return self.cfg.initial_collect_steps - int(self.replay.num_frames())

    def resume_note(self) -> str:
        """After a restore: whether the replay came back or will be refilled."""
        if self.cfg.checkpoint_replay:
            return f"replay buffer restored ({int(self.replay.num_frames()):,} steps)"
        return (
            "replay buffer not checkpointed (--checkpoint_replay=false): refilled with "
            f"{self.cfg.initial_collect_steps:,} steps before training"
        )

    def train_body(self, j: tf.Tensor, loss_sum: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """One gradient step on a replay sample: the body of the train `tf.while_loop`s."""
        experience, info = self.replay.get_next(
            sample_batch_size=self.cfg.batch_size, num_steps=self.sequence_length
        )
        if self._sample_errors is None:
            return j + 1, loss_sum + self._agent.train(experience).loss
        # Prioritized: importance weights into the loss, then the drawn windows'
        # priorities from this step's per-sample errors.
        loss_info = self._agent.train(experience, weights=info.weights)
        updated = self.replay.update_priorities(info.leaves, self._sample_errors(loss_info))
        with tf.control_dependencies([updated]):
            return j + 1, loss_sum + loss_info.loss


class ReplayLoop(LoopBase):
    """Replay buffer, collect drivers and the compiled collect-train function."""

    def __init__(self, cfg: ReplayConfig, inputs: LoopInputs):
        super().__init__(name="collect_train_loop")
        built, tf_env = inputs.built, inputs.tf_env
        self.core = ReplayCore(cfg, built, inputs.env_steps, tf_env.batch_size, inputs)
        self._cfg = cfg
        self._num_envs = tf_env.batch_size
        self.env_steps = inputs.env_steps
        self.episodes, self.train_return = self.core.episodes, self.core.train_return
        observers = self.core.observers
        self._collect_driver = dynamic_step_driver.DynamicStepDriver(
            tf_env,
            built.collect_policy,
            observers=observers,
            num_steps=cfg.collect_steps_per_iteration,
        )
        # DQN's epsilon-greedy policy is uniform-random during the initial collection, so
        # it needs no driver of its own; agents that start from another policy get one.
        self._initial_driver = None
        if built.initial_collect_policy is not built.collect_policy:
            self._initial_driver = dynamic_step_driver.DynamicStepDriver(
                tf_env,
                built.initial_collect_policy,
                observers=observers,
                num_steps=cfg.collect_steps_per_iteration,
            )
        self._device = inputs.device

    @property
    def replay(self):  # noqa: ANN201
        return self.core.replay

    def checkpoint_objects(self) -> dict[str, tf.Module]:
        return self.core.checkpoint_objects()

    def prefill_steps(self) -> int:
        return self.core.prefill_steps()

    def resume_note(self) -> str:
        return self.core.resume_note()

    def prefill(self, num_env_steps: int) -> int:
        """Collection without training up to env step `num_env_steps`.

        Before `initial_collect_steps` it uses the initial-collect policy; a refill after
        a resume uses the collect policy, which is where the run left off.
        """
        per_iteration = self._cfg.collect_steps_per_iteration
        while int(self.env_steps.result()) < num_env_steps:
            steps = int(self.env_steps.result())
            iterations = tf.constant(math.ceil((num_env_steps - steps) / per_iteration), tf.int64)
            if self._initial_driver is not None and steps < self._cfg.initial_collect_steps:
                self._initial_collect(iterations)
            else:
                self.collect_train(iterations, tf.constant(0, tf.int64))
        return int(self.env_steps.result())

    def iterations_within(self, remaining: int) -> int:
        """Collect iterations for one call that cannot pass the next event by a whole iteration.

        The driver ends an iteration once it has counted `collect_steps_per_iteration`
        non-boundary steps, gained up to `num_envs` at a time, so an iteration takes between
        that many and `collect_steps_per_iteration + num_envs - 1` env steps. Sizing calls by
        the upper bound (and running one iteration when less than one remains) ends every
        call at most one iteration past its event: checkpoints, evaluations and metrics rows
        land within one iteration of their multiples instead of drifting by a few steps per
        iteration, which bounds the work a kill can lose.
        """
        most_per_iteration = self._cfg.collect_steps_per_iteration + self._num_envs - 1
        return max(1, remaining // most_per_iteration)

    def run(self, num_iterations: int) -> float:
        """Runs `num_iterations` collect-train iterations; returns the mean loss."""
        return float(
            self.collect_train(
                tf.constant(num_iterations, tf.int64),
                tf.constant(self._cfg.train_steps_per_iteration, tf.int64),
            )
        )

    @tf.function(autograph=False)
    def _initial_collect(self, num_iterations: tf.Tensor) -> tf.Tensor:
        def iteration(i: tf.Tensor) -> tf.Tensor:
            self._initial_driver.run()  # stateful: kept and ordered by the loop body
            return i + 1

        with tf.device(self._device):
            return tf.while_loop(
                lambda i: i < num_iterations, iteration, [tf.constant(0, num_iterations.dtype)]
            )

    # autograph=False: the loops are explicit tf.while_loops, and letting autograph convert
    # TF-Agents' drivers and agents recursively costs seconds of tracing. Both counts are
    # tensors, so this traces once for initial collection and training alike.
    @tf.function(autograph=False)
    def collect_train(self, num_iterations: tf.Tensor, train_steps: tf.Tensor) -> tf.Tensor:
        train_body = self.core.train_body

        def iteration(i: tf.Tensor, loss_sum: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            # Automatic control dependencies order these stateful ops as written: the
            # collected steps are in the replay before the first sample of this iteration.
            self._collect_driver.run()
            _, loss_sum = tf.while_loop(
                lambda j, _: j < train_steps,
                train_body,
                (tf.constant(0, train_steps.dtype), loss_sum),
            )
            return i + 1, loss_sum

        # The ops go where the variables are: on a GPU the whole loop stays on it.
        with tf.device(self._device):
            _, loss_sum = tf.while_loop(
                lambda i, _: i < num_iterations,
                iteration,
                (tf.constant(0, num_iterations.dtype), tf.constant(0.0)),
            )
        count = tf.cast(num_iterations * train_steps, tf.float32)
        return loss_sum / tf.maximum(count, 1.0)
