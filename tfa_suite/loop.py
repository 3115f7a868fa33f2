"""The compiled collect-train loop: drivers, replay and train step in one tf.function.

One call of `CollectTrainLoop.run(k)` runs k iterations of
    collect `collect_steps_per_iteration` env steps  ->  replay.add_batch
    `train_steps_per_iteration` times: replay.get_next -> agent.train
inside a single `tf.function`, so the host is visited once per call, not once per step.
With a TF-native environment (see `tfa_suite.envs.tf_native`) nothing in that graph
leaves the device; with a gymnasium environment, TFPyEnvironment's `py_function` is the
only host round trip, once per batched env step.
"""

from __future__ import annotations

import math

import tensorflow as tf
from tf_agents.agents import tf_agent
from tf_agents.drivers import dynamic_step_driver
from tf_agents.environments import tf_environment
from tf_agents.metrics import tf_metrics
from tf_agents.replay_buffers import tf_uniform_replay_buffer

from tfa_suite.config import TrainConfig
from tfa_suite.replay.frame_store import FrameStoreReplay


def linear_epsilon(config: TrainConfig, env_steps: tf_metrics.EnvironmentSteps):
    """Epsilon as a function of env steps, read each time the collect policy acts.

    The schedule's position is the env step counter itself, which the checkpoint holds,
    so a resumed run continues the schedule where it stopped.
    During the first `initial_collect_steps` epsilon is 1: the epsilon-greedy policy is
    then exactly the uniform-random policy, and one compiled function serves both phases.
    """
    start, end = config.epsilon_start, config.epsilon_end
    decay = float(max(config.epsilon_decay_steps, 1))
    initial = config.initial_collect_steps

    def epsilon() -> tf.Tensor:
        steps = env_steps.result()
        frac = tf.minimum(tf.cast(steps, tf.float32) / decay, 1.0)
        return tf.where(steps < initial, 1.0, start + (end - start) * frac)

    return epsilon


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


class CollectTrainLoop(tf.Module):
    """Replay buffer, collect drivers and the compiled collect-train function."""

    def __init__(
        self,
        config: TrainConfig,
        tf_env: tf_environment.TFEnvironment,
        agent: tf_agent.TFAgent,
        env_steps: tf_metrics.EnvironmentSteps,
        device: str = "/CPU:0",
    ):
        super().__init__(name="collect_train_loop")
        self._config = config
        self._agent = agent
        num_envs = tf_env.batch_size
        self.env_steps = env_steps
        self.episodes = tf_metrics.NumberOfEpisodes()
        self.train_return = tf_metrics.AverageReturnMetric(
            batch_size=num_envs, buffer_size=max(10, num_envs)
        )
        self.replay = make_replay(
            agent.collect_data_spec, num_envs, math.ceil(config.replay_capacity / num_envs), device
        )
        observers = [self.replay.add_batch, self.env_steps, self.episodes, self.train_return]
        self._collect_driver = dynamic_step_driver.DynamicStepDriver(
            tf_env,
            agent.collect_policy,
            observers=observers,
            num_steps=config.collect_steps_per_iteration,
        )
        self._sample_steps = config.n_step + 1
        self._device = device

    def initial_collect(self, num_env_steps: int) -> int:
        """Collection without training up to env step `num_env_steps`.

        Before `initial_collect_steps` the epsilon schedule is 1, so this is uniform-random.
        """
        per_iteration = self._config.collect_steps_per_iteration
        while int(self.env_steps.result()) < num_env_steps:
            missing = num_env_steps - int(self.env_steps.result())
            iterations = math.ceil(missing / per_iteration)
            self.run(tf.constant(iterations, tf.int64), tf.constant(0, tf.int64))
        return int(self.env_steps.result())

    # autograph=False: the loops are explicit tf.while_loops, and letting autograph convert
    # TF-Agents' drivers and agents recursively costs seconds of tracing. Both counts are
    # tensors, so this traces once for initial collection and training alike.
    @tf.function(autograph=False)
    def run(self, num_iterations: tf.Tensor, train_steps: tf.Tensor) -> tf.Tensor:
        """Runs `num_iterations` collect-train iterations; returns the mean loss."""

        def train_body(j: tf.Tensor, loss_sum: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            experience, _ = self.replay.get_next(
                sample_batch_size=self._config.batch_size, num_steps=self._sample_steps
            )
            return j + 1, loss_sum + self._agent.train(experience).loss

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
