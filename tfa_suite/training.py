"""`train(config)`: the one training entry point for binaries, tests and benchmarks."""

from __future__ import annotations

import dataclasses
import math
import os
import re
import time
from typing import Any

import numpy as np
import tensorflow as tf
from tf_agents.metrics import tf_metrics
from tf_agents.trajectories import time_step as ts

from tfa_suite import agents, envs
from tfa_suite.checkpoints import RunCheckpoint
from tfa_suite.config import TrainConfig, validate
from tfa_suite.envs import training_env
from tfa_suite.errors import EnvironmentFailed, UserError
from tfa_suite.graph_eval import GraphEvaluator
from tfa_suite.interrupts import stop_on_signals
from tfa_suite.loop import CollectTrainLoop, linear_epsilon
from tfa_suite.precision import graph_precision
from tfa_suite.reporting import MetricsFile, Progress, read_metrics
from tfa_suite.run_dir import open_run_dir
from tfa_suite.run_evaluation import RunEvaluation
from tfa_suite.run_outputs import TrainResult, finish_run, finished_result, make_result

# Seeds of evaluation episodes sit far from training seeds, so evaluation starts are
# never the training env's own starts.
EVAL_SEED_OFFSET = 1_000_003


class TrainingDiverged(UserError):
    """The loss or Q-values became NaN or Inf."""


def training_device() -> str:
    """The first GPU when TensorFlow sees one, else the CPU."""
    return "/GPU:0" if tf.config.list_logical_devices("GPU") else "/CPU:0"


def resolve_config(config: TrainConfig) -> TrainConfig:
    validate(config)
    if not config.root_dir:
        config = dataclasses.replace(config, root_dir=config.default_root_dir())
    return config


def _greedy_action_fn(agent, observation_spec: tf.TensorSpec):  # noqa: ANN001, ANN202
    """Batch of observations -> greedy actions, traced once for any batch size."""
    spec = tf.TensorSpec([None, *observation_spec.shape], observation_spec.dtype)

    @tf.function(input_signature=[spec], autograph=False)
    def act(observation: tf.Tensor) -> tf.Tensor:
        n = tf.shape(observation)[0]
        time_step = ts.TimeStep(
            step_type=tf.fill([n], ts.StepType.FIRST),
            reward=tf.zeros([n], tf.float32),
            discount=tf.ones([n], tf.float32),
            observation=observation,
        )
        return agent.policy.action(time_step).action

    return lambda obs: act(np.asarray(obs, dtype=observation_spec.dtype.as_numpy_dtype)).numpy()


@dataclasses.dataclass
class Parts:
    """The live objects of a run, before any file is written."""

    tf_env: Any
    agent: Any
    loop: CollectTrainLoop
    backend: str
    device: str
    graph_evaluator: GraphEvaluator | None


def build(config: TrainConfig, spec: envs.EnvSpec) -> Parts:
    """Builds env, agent and compiled loop for a resolved config; writes nothing."""
    device = training_device()
    # Environment state, replay storage, networks and counters all live on one device, so
    # on a GPU the compiled loop (with a TF-native env) never copies through the host.
    with tf.device(device):
        tf_env, backend = training_env.make_train_env(config, spec)
        env_steps = tf_metrics.EnvironmentSteps()
        train_step = tf.Variable(0, dtype=tf.int64, name="train_step")
        agent = agents.build_agent(
            config,
            tf_env.time_step_spec(),
            tf_env.action_spec(),
            train_step,
            linear_epsilon(config, env_steps),
        )
        loop = CollectTrainLoop(config, tf_env, agent, env_steps, device=device)
        eval_env = training_env.make_tf_eval_env(
            config, spec, config.eval_episodes, config.seed + EVAL_SEED_OFFSET
        )
        graph_evaluator = (
            GraphEvaluator(eval_env, agent.policy, config.seed + EVAL_SEED_OFFSET)
            if eval_env is not None
            else None
        )
    return Parts(tf_env, agent, loop, backend, device, graph_evaluator)


def train(config: TrainConfig) -> TrainResult:
    """Trains, evaluates and exports one run under `config.root_dir`; resumes if it can.

    Everything that can be wrong with the input (env id, spaces, flags, root dir) is
    checked before the root dir is touched, and reported as a UserError. SIGINT and
    SIGTERM checkpoint and return early, with `stopped_by_signal` set.
    """
    start_time = time.monotonic()
    config = resolve_config(config)
    with graph_precision(config.mixed_precision):
        return _train(config, start_time)


def _train(config: TrainConfig, start_time: float) -> TrainResult:
    spec = envs.EnvSpec(
        config.env, envs.parse_env_kwargs(config.env_kwargs), config.max_episode_steps
    )
    target = config.target_return
    if math.isnan(target):
        target = envs.reward_threshold(spec)
    if config.stop_at_threshold and target is None and config.eval_interval:
        print(
            f"note: {config.env} registers no reward_threshold and --target_return is unset, "
            "so training runs for the full --num_env_steps"
        )

    tf.random.set_seed(config.seed)
    np.random.seed(config.seed)
    parts = build(config, spec)
    tf_env, agent, loop = parts.tf_env, parts.agent, parts.loop
    env_steps, train_step = loop.env_steps, agent.train_step_counter

    run, resuming = open_run_dir(config)
    finished = finished_result(run, config) if resuming else None
    if finished is not None:
        print(
            f"run in {os.path.abspath(run.root)} is already complete "
            f"({finished.env_steps:,} env steps, final return {finished.final_eval_mean:.1f}); "
            "to train on, pass a larger --num_env_steps (and --stop_at_threshold=false if it "
            "stopped on solving), or a new --root_dir for a fresh run",
            flush=True,
        )
        return finished
    print(
        f"run dir: {os.path.abspath(run.root)}  (env: {config.env}, backend: {parts.backend}, "
        f"device: {parts.device})",
        flush=True,
    )
    objects = dict(
        agent=agent,
        env_steps=env_steps,
        episodes=loop.episodes,
        train_return=loop.train_return,
        train_step=train_step,
    )
    if config.checkpoint_replay:
        objects["replay"] = loop.replay
    if isinstance(tf_env, tf.Module):
        # A TF-native env's state and RNG are variables: resume continues its episodes.
        objects["env"] = tf_env
    ckpt = RunCheckpoint(run.checkpoints, **objects)
    restored = ckpt.restore_latest() if resuming else None
    if restored:
        # TF's op-level random streams restart with the process; reseeding from the step
        # keeps a resumed run deterministic without replaying the first stretch's draws.
        tf.random.set_seed(config.seed * 1_000_003 + int(env_steps.result()))
        print(f"resumed from {restored} at env step {int(env_steps.result()):,}", flush=True)
    resumed_from = int(env_steps.result())
    metrics = MetricsFile(run.metrics, resume_from_step=resumed_from if resuming else None)
    writer = tf.summary.create_file_writer(run.summaries)
    progress = Progress(config.num_env_steps, resumed_from)
    greedy = _greedy_action_fn(agent, tf_env.time_step_spec().observation)
    eval_seed = config.seed + EVAL_SEED_OFFSET
    evaluation = RunEvaluation(
        spec,
        greedy,
        parts.graph_evaluator,
        config.eval_episodes,
        eval_seed,
        target,
        writer,
        progress,
        metrics,
        start_time,
        sticky_actions=config.eval_sticky_actions,
    )
    evaluation.restore(read_metrics(run.metrics))

    with stop_on_signals() as stop:
        # A fresh run collects its uniform-random start here; a resumed run whose replay
        # was not checkpointed (--checkpoint_replay=false) refills it with its own policy.
        # A run resumed only to finish (its --num_env_steps already reached, or solved
        # before the stop) goes straight to the export: refilling would be wasted work.
        steps = int(env_steps.result())
        already_solved = evaluation.solved is not None and config.stop_at_threshold
        will_train = steps < config.num_env_steps and not already_solved
        if not will_train:
            # No train step will run, so the optimizer's slots are never created and
            # their saved values are never read: that is expected, not a mismatch.
            ckpt.expect_partial()
        # The refill counts toward --num_env_steps, so it never runs past the budget.
        missing = min(
            config.initial_collect_steps - int(loop.replay.num_frames()),
            config.num_env_steps - steps,
        )
        if missing > 0 and will_train:
            progress.message(f"collecting {missing:,} steps into the replay buffer before training")
            _run_loop(loop, steps + missing, None)  # maps env failures to one-line errors
            steps = int(env_steps.result())
        next_eval = _next_multiple(steps, config.eval_interval)
        next_checkpoint = _next_multiple(steps, config.checkpoint_interval)
        next_metrics = _next_multiple(steps, config.metrics_interval)
        next_print = time.monotonic()  # the first progress line comes at the first row
        train_steps_per_iteration = tf.constant(config.train_steps_per_iteration, tf.int64)
        loss_sum, loss_iterations = 0.0, 0
        if already_solved:
            # Solved before an interruption: finish (export, video) without training on.
            progress.message(f"solved at env step {evaluation.solved.env_steps:,} before resuming")
        while steps < config.num_env_steps and not stop.requested and not already_solved:
            # Calls are sized from the env step count alone, never from timing, so where
            # they end (and so every logged figure) depends only on the config and seed.
            # Reaching an event can take a few calls; see _iterations_within.
            next_event = min(config.num_env_steps, next_eval, next_checkpoint, next_metrics)
            iterations = _iterations_within(next_event - steps, config)
            call_loss = _run_loop(loop, iterations, train_steps_per_iteration)
            ckpt.assert_fully_restored()  # once; a no-op for a fresh run
            steps = int(env_steps.result())
            if not math.isfinite(call_loss):
                raise TrainingDiverged(_diverged_message(str(call_loss), loop))
            # A row's loss is the mean over every update since the previous row.
            loss_sum += call_loss * iterations
            loss_iterations += iterations
            if steps >= next_metrics or steps >= config.num_env_steps:
                loss = loss_sum / loss_iterations
                loss_sum, loss_iterations = 0.0, 0
                next_metrics = _next_multiple(steps, config.metrics_interval)
                show = time.monotonic() >= next_print or steps >= config.num_env_steps
                if show:
                    next_print = time.monotonic() + config.log_interval_seconds
                _log(
                    progress,
                    writer,
                    metrics,
                    steps,
                    int(train_step.numpy()),
                    loss,
                    float(linear_epsilon(config, env_steps)()),
                    _train_return(loop),
                    start_time,
                    show,
                )
            if config.eval_interval and steps >= next_eval and not stop.requested:
                next_eval = _next_multiple(steps, config.eval_interval)
                if evaluation(steps, int(train_step.numpy())) and config.stop_at_threshold:
                    progress.message(f"solved: greedy return >= {target:g}; stopping")
                    break
            if steps >= next_checkpoint:
                next_checkpoint = _next_multiple(steps, config.checkpoint_interval)
                ckpt.save(steps)

        if not ckpt.has(steps):
            # Re-saving the same step number would rewrite the newest good checkpoint.
            ckpt.save(steps)
        metrics.close()
        if stop.requested:
            print(
                f"stopped at env step {steps:,}; checkpoint saved in {run.checkpoints}. "
                "Run the same command to resume.",
                flush=True,
            )
            return make_result(
                run,
                steps,
                int(train_step.numpy()),
                start_time,
                evaluation,
                resumed_from,
                final=None,
                signal_number=stop.signal_number,
            )
    return finish_run(
        config, run, spec, agent, train_step, steps, evaluation, resumed_from, start_time, eval_seed
    )


def _diverged_message(value: str, loop: CollectTrainLoop) -> str:
    return (
        f"loss became {value} near env step {int(loop.env_steps.result()):,}; stopped without "
        "saving, so the newest checkpoint is the last good one. Try a lower --learning_rate "
        "or --gradient_clipping, or check the environment's rewards"
    )


def _run_loop(loop: CollectTrainLoop, count: int, train_steps: tf.Tensor | None) -> float:
    """One compiled call; an exception raised by a Python env becomes a one-line error.

    A Python environment runs inside `py_function`, so its exceptions reach us wrapped in
    a TensorFlow error with the traced graph's stack attached: unwrap them to the message.
    """
    try:
        if train_steps is None:
            loop.initial_collect(count)
            return math.nan
        return float(loop.run(tf.constant(count, tf.int64), train_steps))
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as e:
        if "CheckNumerics" in str(e):
            # DqnAgent checks its loss for Inf/NaN inside the graph.
            raise TrainingDiverged(_diverged_message("inf or nan", loop)) from None
        if "_py_func" not in str(e) and "PyFunc" not in str(e):
            raise
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        cause = next(
            (ln for ln in reversed(lines) if re.match(r"^[A-Za-z_.]+(Error|Exception):", ln)),
            lines[-1],
        )
        raise EnvironmentFailed(f"the environment failed while stepping: {cause}") from None


def _iterations_within(remaining: int, config: TrainConfig) -> int:
    """Collect iterations for one call that cannot pass the next event by a whole iteration.

    The driver ends an iteration once it has counted `collect_steps_per_iteration`
    non-boundary steps, gained up to `num_envs` at a time, so an iteration takes between
    that many and `collect_steps_per_iteration + num_envs - 1` env steps. Sizing calls by
    the upper bound (and running one iteration when less than one remains) ends every
    call at most one iteration past its event: checkpoints, evaluations and metrics rows
    land within one iteration of their multiples instead of drifting by a few steps per
    iteration, which bounds the work a kill can lose.
    """
    most_per_iteration = config.collect_steps_per_iteration + config.num_envs - 1
    return max(1, remaining // most_per_iteration)


def _train_return(loop: CollectTrainLoop) -> float:
    """Mean return of the last training episodes; NaN (shown as n/a) before the first ends.

    TF-Agents' AverageReturnMetric reads 0.0 while its buffer is empty, which on Pong
    (games of thousands of steps, scores -21..21) looks like a real score.
    """
    if int(loop.episodes.result()) == 0:
        return math.nan
    return float(loop.train_return.result())


def _next_multiple(steps: int, interval: int) -> int:
    if interval <= 0:
        return 2**62
    return (steps // interval + 1) * interval


def _log(
    progress: Progress,
    writer,
    metrics: MetricsFile,
    steps: int,
    train_steps: int,  # noqa: ANN001
    loss: float,
    epsilon: float,
    train_return: float,
    start_time: float,
    show: bool,
) -> None:
    rate = progress.rate(steps)
    if show:
        progress.line(steps, rate, loss, epsilon, train_return)
    with writer.as_default(step=steps):
        tf.summary.scalar("train/loss", loss)
        if not math.isnan(train_return):
            tf.summary.scalar("train/episode_return", train_return)
        tf.summary.scalar("train/epsilon", epsilon)
        tf.summary.scalar("perf/env_steps_per_sec", rate)
    metrics.write(
        {
            "env_steps": steps,
            "train_steps": train_steps,
            "wall_seconds": time.monotonic() - start_time,
            "env_steps_per_sec": rate,
            "loss": loss,
            "epsilon": epsilon,
            "train_return": train_return,
        }
    )
