"""`train(config)`: the one training entry point for binaries, tests and benchmarks."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from typing import Any

import numpy as np
import tensorflow as tf
from tf_agents.metrics import tf_metrics
from tf_agents.trajectories import time_step as ts

from tfa_suite import agents, envs
from tfa_suite.config import TrainConfig, validate
from tfa_suite.errors import UserError
from tfa_suite.evaluation import EpisodeStats, record_video, run_episodes
from tfa_suite.loop import CollectTrainLoop, linear_epsilon
from tfa_suite.reporting import MetricsFile, Progress, plot_learning_curve
from tfa_suite.run_dir import RunDir, open_run_dir
from tfa_suite.saved_policy import SavedPolicy, export_policy

# Seeds of evaluation episodes sit far from training seeds, so evaluation starts are
# never the training env's own starts.
EVAL_SEED_OFFSET = 1_000_003


class TrainingDiverged(UserError):
    """The loss or Q-values became NaN or Inf."""


@dataclasses.dataclass
class TrainResult:
    root_dir: str
    env_steps: int
    train_steps: int
    wall_seconds: float
    target_return: float | None
    solved: bool
    solved_at_env_steps: int | None
    solved_at_seconds: float | None
    final_eval_mean: float
    final_eval_std: float
    evaluations: list[dict[str, float]]
    resumed_from_env_steps: int

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


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


def train(config: TrainConfig) -> TrainResult:
    """Trains, evaluates and exports one run under `config.root_dir`; resumes if it can.

    Everything that can be wrong with the input (env id, spaces, flags, root dir) is
    checked before the root dir is touched, and reported as a UserError.
    """
    start_time = time.monotonic()
    config = resolve_config(config)
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
    tf_env, backend = envs.make_train_env(config, spec)
    env_steps = tf_metrics.EnvironmentSteps()
    train_step = tf.Variable(0, dtype=tf.int64, name="train_step")
    agent = agents.build_agent(
        config, tf_env.time_step_spec(), tf_env.action_spec(), train_step,
        linear_epsilon(config, env_steps),
    )
    loop = CollectTrainLoop(config, tf_env, agent, env_steps)

    run, resuming = open_run_dir(config)
    print(f"run dir: {os.path.abspath(run.root)}  (backend: {backend}, env: {config.env})", flush=True)
    checkpoint = tf.train.Checkpoint(
        agent=agent, replay=loop.replay, env_steps=env_steps, episodes=loop.episodes,
        train_return=loop.train_return, train_step=train_step,
    )
    manager = tf.train.CheckpointManager(checkpoint, run.checkpoints, max_to_keep=3)
    if resuming and manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        print(f"resumed from {manager.latest_checkpoint} at env step {int(env_steps.result()):,}")
    resumed_from = int(env_steps.result())
    metrics = MetricsFile(run.metrics, resume_from_step=resumed_from if resuming else None)
    writer = tf.summary.create_file_writer(run.summaries)
    progress = Progress(config.num_env_steps, resumed_from)
    greedy = _greedy_action_fn(agent, tf_env.time_step_spec().observation)
    eval_seed = config.seed + EVAL_SEED_OFFSET
    evaluations: list[dict[str, float]] = []
    solved_at: tuple[int, float] | None = None

    def evaluate(step: int) -> EpisodeStats:
        stats = run_episodes(greedy, spec, config.eval_episodes, seed=eval_seed)
        evaluations.append({"env_steps": step, "mean": stats.mean, "std": stats.std})
        with writer.as_default(step=step):
            tf.summary.scalar("eval/mean_return", stats.mean)
            tf.summary.scalar("eval/std_return", stats.std)
        progress.message(
            f"eval @ {step:,} env steps: return {stats.mean:.1f} ± {stats.std:.1f} "
            f"over {config.eval_episodes} episodes"
        )
        return stats

    if int(env_steps.result()) < config.initial_collect_steps:
        progress.message(f"collecting {config.initial_collect_steps:,} uniform-random steps")
        loop.initial_collect(tf.constant(config.initial_collect_steps, tf.int64))

    steps = int(env_steps.result())
    next_eval = _next_multiple(steps, config.eval_interval)
    next_checkpoint = _next_multiple(steps, config.checkpoint_interval)
    next_log = time.monotonic() + config.log_interval_seconds
    iterations_per_call = 1
    steps_per_iteration = config.collect_steps_per_iteration
    loss = math.nan
    while steps < config.num_env_steps:
        next_event = min(config.num_env_steps, next_eval, next_checkpoint)
        wanted = max(1, math.ceil((next_event - steps) / steps_per_iteration))
        iterations = min(wanted, iterations_per_call)
        call_start = time.monotonic()
        loss = float(loop.run(tf.constant(iterations, tf.int64)))
        call_seconds = time.monotonic() - call_start
        steps = int(env_steps.result())
        # Grow calls towards ~0.5 s each: long enough to amortize the host visit, short
        # enough for steady progress lines.
        iterations_per_call = max(1, int(iterations * min(4.0, 0.5 / max(call_seconds, 1e-3))))
        if not math.isfinite(loss):
            raise TrainingDiverged(
                f"loss became {loss} at env step {steps:,}; stopped without saving, the last "
                f"good checkpoint is in {run.checkpoints}. Try a lower --learning_rate or "
                "--gradient_clipping"
            )
        if time.monotonic() >= next_log or steps >= config.num_env_steps:
            next_log = time.monotonic() + config.log_interval_seconds
            _log(progress, writer, metrics, steps, int(train_step.numpy()), loss,
                 float(linear_epsilon(config, env_steps)()), float(loop.train_return.result()),
                 start_time)
        if config.eval_interval and steps >= next_eval:
            next_eval = _next_multiple(steps, config.eval_interval)
            stats = evaluate(steps)
            metrics.write({
                "env_steps": steps, "train_steps": int(train_step.numpy()),
                "wall_seconds": time.monotonic() - start_time,
                "eval_mean": stats.mean, "eval_std": stats.std,
            })
            if target is not None and stats.mean >= target and solved_at is None:
                solved_at = (steps, time.monotonic() - start_time)
                if config.stop_at_threshold:
                    progress.message(f"solved: eval return {stats.mean:.1f} >= {target:g}; stopping")
                    break
        if steps >= next_checkpoint:
            next_checkpoint = _next_multiple(steps, config.checkpoint_interval)
            manager.save(checkpoint_number=steps)

    manager.save(checkpoint_number=steps)
    metrics.close()
    return _finish(config, run, spec, agent, train_step, steps, evaluations, target, solved_at,
                   resumed_from, start_time, eval_seed)


def _next_multiple(steps: int, interval: int) -> int:
    if interval <= 0:
        return 2**62
    return (steps // interval + 1) * interval


def _log(progress: Progress, writer, metrics: MetricsFile, steps: int, train_steps: int,  # noqa: ANN001
         loss: float, epsilon: float, train_return: float, start_time: float) -> None:
    rate = progress.rate(steps)
    progress.line(steps, rate, loss, epsilon, train_return)
    with writer.as_default(step=steps):
        tf.summary.scalar("train/loss", loss)
        tf.summary.scalar("train/episode_return", train_return)
        tf.summary.scalar("train/epsilon", epsilon)
        tf.summary.scalar("perf/env_steps_per_sec", rate)
    metrics.write({
        "env_steps": steps, "train_steps": train_steps,
        "wall_seconds": time.monotonic() - start_time, "env_steps_per_sec": rate,
        "loss": loss, "epsilon": epsilon, "train_return": train_return,
    })


def _finish(config: TrainConfig, run: RunDir, spec: envs.EnvSpec, agent, train_step,  # noqa: ANN001
            steps: int, evaluations: list[dict[str, float]], target: float | None,
            solved_at: tuple[int, float] | None, resumed_from: int, start_time: float,
            eval_seed: int) -> TrainResult:
    """Exports the policy, then proves the export works by scoring and filming it."""
    export_policy(agent.policy, run.policy, spec, train_step)
    saved = SavedPolicy(run.policy)
    final = run_episodes(saved, spec, config.eval_episodes, seed=eval_seed)
    print(f"exported policy {run.policy}: reloaded, return {final.mean:.1f} ± {final.std:.1f} "
          f"over {config.eval_episodes} episodes", flush=True)
    if config.video_episodes:
        record_video(saved, spec, run.video, config.video_episodes, seed=eval_seed)
    plot_learning_curve(run.metrics, run.curve, f"{config.env} {config.agent} seed {config.seed}", target)
    result = TrainResult(
        root_dir=run.root, env_steps=steps, train_steps=int(train_step.numpy()),
        wall_seconds=time.monotonic() - start_time, target_return=target,
        solved=solved_at is not None or (target is not None and final.mean >= target),
        solved_at_env_steps=solved_at[0] if solved_at else None,
        solved_at_seconds=solved_at[1] if solved_at else None,
        final_eval_mean=final.mean, final_eval_std=final.std, evaluations=evaluations,
        resumed_from_env_steps=resumed_from,
    )
    with open(run.result + ".tmp", "w") as f:
        json.dump(result.to_json(), f, indent=2)
    os.replace(run.result + ".tmp", run.result)
    print(f"done: {steps:,} env steps in {result.wall_seconds:.1f} s; outputs in "
          f"{os.path.abspath(run.root)}", flush=True)
    return result
