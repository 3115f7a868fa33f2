"""The training session: run dir, resume, signals, the event schedule and the run outputs.

`Session.run()` drives any loop (`tfa_suite.loops`) through the same steps:

1. open the run dir (or find the run there already complete) and restore the newest
   checkpoint;
2. prefill: the loop's initial collection, or its refill after a resume;
3. compiled calls up to the next event, then that event: a metrics row, an evaluation
   (which may solve the run), a checkpoint;
4. on a signal, a checkpoint and an early return; otherwise the run's end
   (`tfa_suite.run_outputs.finish_run`): export, reload, score, video and curve.

It names no agent and no loop kind: what it logs besides the loss comes from the agent's
`scalars`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import time
from typing import Any

import numpy as np
import tensorflow as tf
from tf_agents.trajectories import time_step as ts

from tfa_suite.checkpoints import RunCheckpoint
from tfa_suite.envs.loading import EnvSpec
from tfa_suite.errors import EnvironmentFailed, UserError
from tfa_suite.interrupts import StopRequest, stop_on_signals
from tfa_suite.reporting import MetricsFile, Progress, metric_fields, read_metrics
from tfa_suite.run_dir import RunDir, open_run_dir
from tfa_suite.run_evaluation import EvalSetup, RunEvaluation
from tfa_suite.run_outputs import RunContext, TrainResult, finish_run, finished_result, make_result
from tfa_suite.schedule import EventSchedule


class TrainingDiverged(UserError):
    """The loss became NaN or Inf."""


def greedy_action_fn(policy, observation_spec: tf.TensorSpec):  # noqa: ANN001, ANN201
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
        return policy.action(time_step).action

    return lambda obs: act(np.asarray(obs, dtype=observation_spec.dtype.as_numpy_dtype)).numpy()


@dataclasses.dataclass
class _Losses:
    """A metrics row's loss: the mean over every update since the previous row."""

    total: float = 0.0
    iterations: int = 0

    def add(self, mean_loss: float, iterations: int) -> None:
        self.total += mean_loss * iterations
        self.iterations += iterations

    def take(self) -> float:
        mean = self.total / max(self.iterations, 1)
        self.total, self.iterations = 0.0, 0
        return mean


class Session:
    def __init__(
        self, parts: Any, spec: EnvSpec, target: float | None, eval_seed: int, start_time: float
    ):
        self.parts = parts
        self.config = parts.config
        self.loop = parts.loop
        self.spec = spec
        self.target = target
        self.eval_seed = eval_seed
        self.start_time = start_time
        self.train_step = parts.built.agent.train_step_counter

    # --- 1. run dir and resume ------------------------------------------------------

    def run(self) -> TrainResult:
        run, resuming = open_run_dir(self.config)
        finished = finished_result(run, self.config) if resuming else None
        if finished is not None:
            print(
                f"run in {os.path.abspath(run.root)} is already complete "
                f"({finished.env_steps:,} env steps, final return "
                f"{finished.final_eval_mean:.1f}); to train on, pass a larger --num_env_steps "
                "(and --stop_at_threshold=false if it stopped on solving), or a new "
                "--root_dir for a fresh run",
                flush=True,
            )
            return finished
        print(
            f"run dir: {os.path.abspath(run.root)}  (agent: {self.config.run.agent}, env: "
            f"{self.config.run.env}, backend: {self.parts.backend}, device: {self.parts.device})",
            flush=True,
        )
        ckpt = self._restore(run, resuming)
        ctx = self._open_outputs(run, resuming)
        with stop_on_signals() as stop:
            steps = self._train(ctx, ckpt, stop)
            if not ckpt.has(steps):
                # Re-saving the same step number would rewrite the newest good checkpoint.
                ckpt.save(steps)
            ctx.metrics.close()
            if stop.requested:
                print(
                    f"stopped at env step {steps:,}; checkpoint saved in {run.checkpoints}. "
                    "Run the same command to resume.",
                    flush=True,
                )
                return make_result(ctx, steps, final=None, signal_number=stop.signal_number)
        return finish_run(ctx, steps)

    def _restore(self, run: RunDir, resuming: bool) -> RunCheckpoint:
        objects = dict(
            agent=self.parts.built.agent,
            env_steps=self.loop.env_steps,
            train_step=self.train_step,
            **self.loop.checkpoint_objects(),
        )
        if isinstance(self.parts.tf_env, tf.Module):
            # A TF-native env's state and RNG are variables: resume continues its episodes.
            objects["env"] = self.parts.tf_env
        ckpt = RunCheckpoint(run.checkpoints, **objects)
        restored = ckpt.restore_latest() if resuming else None
        if restored:
            steps = int(self.loop.env_steps.result())
            # TF's op-level random streams restart with the process; reseeding from the
            # step keeps a resumed run deterministic without replaying the first draws.
            tf.random.set_seed(self.config.run.seed * 1_000_003 + steps)
            print(f"resumed from {restored} at env step {steps:,}", flush=True)
        return ckpt

    def _open_outputs(self, run: RunDir, resuming: bool) -> RunContext:
        resumed_from = int(self.loop.env_steps.result())
        built = self.parts.built
        metrics = MetricsFile(
            run.metrics,
            resume_from_step=resumed_from if resuming else None,
            fields=metric_fields(list(built.scalars) + list(getattr(self.loop, "perf_fields", ()))),
        )
        writer = tf.summary.create_file_writer(run.summaries)
        progress = Progress(self.config.run.num_env_steps, resumed_from)
        cfg = self.config.run
        setup = EvalSetup(
            spec=self.spec,
            greedy=greedy_action_fn(
                built.greedy_policy, self.parts.tf_env.time_step_spec().observation
            ),
            graph_evaluator=self.parts.graph_evaluator,
            episodes=cfg.eval_episodes,
            seed=self.eval_seed,
            target=self.target,
            sticky_actions=cfg.eval_sticky_actions,
            max_episode_steps=cfg.eval_max_episode_steps,
        )
        evaluation = RunEvaluation(setup, writer, progress, metrics, self.start_time)
        evaluation.restore(read_metrics(run.metrics))
        return RunContext(
            config=self.config,
            spec=self.spec,
            run=run,
            policy=built.greedy_policy,
            train_step=self.train_step,
            evaluation=evaluation,
            metrics=metrics,
            writer=writer,
            progress=progress,
            resumed_from=resumed_from,
            start_time=self.start_time,
            eval_seed=self.eval_seed,
        )

    # --- 2. and 3. prefill and training ----------------------------------------------

    def _train(self, ctx: RunContext, ckpt: RunCheckpoint, stop: StopRequest) -> int:
        cfg = self.config.run
        steps = int(self.loop.env_steps.result())
        already_solved = ctx.evaluation.solved is not None and cfg.stop_at_threshold
        will_train = steps < cfg.num_env_steps and not already_solved
        if not will_train:
            # No train step will run, so the optimizer's slots are never created and
            # their saved values are never read: that is expected, not a mismatch.
            ckpt.expect_partial()
        # A fresh run collects its initial data here; a resumed run whose replay was not
        # checkpointed refills it. A run resumed only to finish (its --num_env_steps
        # reached, or solved before the stop) goes straight to the export. The prefill
        # counts toward --num_env_steps, so it never runs past the budget.
        missing = min(self.loop.prefill_steps(), cfg.num_env_steps - steps)
        if missing > 0 and will_train:
            ctx.progress.message(
                f"collecting {missing:,} steps into the replay buffer before training"
            )
            self._call(self.loop.prefill, steps + missing)
            steps = int(self.loop.env_steps.result())
        if already_solved:
            ctx.progress.message(
                f"solved at env step {ctx.evaluation.solved.env_steps:,} before resuming"
            )
            return steps
        compile_loop = getattr(self.loop, "compile", None)
        if compile_loop is not None:
            # Tracing is part of a run's cost (TF-Agents' PPO step takes seconds); a loop
            # that traces up front reports it here, before its first compiled call.
            ctx.progress.message(f"traced the training loop in {compile_loop():.1f} s")
        schedule = EventSchedule(
            steps, cfg.eval_interval, cfg.checkpoint_interval, cfg.metrics_interval
        )
        rows = _RowWriter(self, ctx)
        while steps < cfg.num_env_steps and not stop.requested:
            # Reaching an event can take a few calls; see the loop's iterations_within.
            iterations = self.loop.iterations_within(schedule.next_event(cfg.num_env_steps) - steps)
            call_loss = self._call(self.loop.run, iterations)
            ckpt.assert_fully_restored()  # once; a no-op for a fresh run
            steps = int(self.loop.env_steps.result())
            if not math.isfinite(call_loss):
                raise TrainingDiverged(self._diverged_message(str(call_loss)))
            rows.losses.add(call_loss, iterations)
            if schedule.due("metrics", steps) or steps >= cfg.num_env_steps:
                schedule.advance("metrics", steps)
                rows.write(steps)
            if cfg.eval_interval and schedule.due("eval", steps) and not stop.requested:
                schedule.advance("eval", steps)
                if ctx.evaluation(steps, int(self.train_step.numpy())) and cfg.stop_at_threshold:
                    ctx.progress.message(f"solved: greedy return >= {self.target:g}; stopping")
                    break
            if schedule.due("checkpoint", steps):
                schedule.advance("checkpoint", steps)
                ckpt.save(steps)
        return steps

    def _diverged_message(self, value: str) -> str:
        return (
            f"loss became {value} near env step {int(self.loop.env_steps.result()):,}; stopped "
            "without saving, so the newest checkpoint is the last good one. Try a lower "
            "learning rate or gradient clipping, or check the environment's rewards"
        )

    def _call(self, fn, *args):  # noqa: ANN001, ANN002, ANN202
        """One compiled call; an exception raised by a Python env becomes a one-line error.

        A Python environment runs inside `py_function`, so its exceptions reach us wrapped
        in a TensorFlow error with the traced graph's stack attached: unwrap to the message.
        """
        try:
            return fn(*args)
        except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as e:
            if "CheckNumerics" in str(e):
                # TF-Agents' agents check their losses for Inf/NaN inside the graph.
                raise TrainingDiverged(self._diverged_message("inf or nan")) from None
            if "_py_func" not in str(e) and "PyFunc" not in str(e):
                raise
            lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
            cause = next(
                (ln for ln in reversed(lines) if re.match(r"^[A-Za-z_.]+(Error|Exception):", ln)),
                lines[-1],
            )
            raise EnvironmentFailed(f"the environment failed while stepping: {cause}") from None


class _RowWriter:
    """metrics.csv rows, TensorBoard scalars and the progress line, at each metrics event."""

    def __init__(self, session: Session, ctx: RunContext):
        self._session, self._ctx = session, ctx
        self._scalars = session.parts.built.scalars
        self._interval = session.config.run.log_interval_seconds
        self._next_print = time.monotonic()  # the first progress line comes at the first row
        self.losses = _Losses()

    def write(self, steps: int) -> None:
        ctx, session = self._ctx, self._session
        loss = self.losses.take()
        show = time.monotonic() >= self._next_print or steps >= session.config.run.num_env_steps
        if show:
            self._next_print = time.monotonic() + self._interval
        scalars = {name: float(fn()) for name, fn in self._scalars.items()}
        # A loop's own throughput figures (Ray actors' env steps/s), named by `perf_fields`.
        perf = session.loop.perf_values() if hasattr(session.loop, "perf_values") else {}
        train_return = _train_return(session.loop)
        rate = ctx.progress.rate(steps)
        if show:
            ctx.progress.line(steps, rate, loss, scalars, train_return)
        with ctx.writer.as_default(step=steps):
            tf.summary.scalar("train/loss", loss)
            if not math.isnan(train_return):
                tf.summary.scalar("train/episode_return", train_return)
            for name, value in scalars.items():
                tf.summary.scalar(f"train/{name}", value)
            tf.summary.scalar("perf/env_steps_per_sec", rate)
            for name, value in perf.items():
                tf.summary.scalar(f"perf/{name}", value)
        ctx.metrics.write(
            {
                "env_steps": steps,
                "train_steps": int(session.train_step.numpy()),
                "wall_seconds": time.monotonic() - session.start_time,
                "env_steps_per_sec": rate,
                "loss": loss,
                **scalars,
                **perf,
                "train_return": train_return,
            }
        )


def _train_return(loop: Any) -> float:
    """Mean return of the last training episodes; NaN (shown as n/a) before the first ends.

    TF-Agents' AverageReturnMetric reads 0.0 while its buffer is empty, which on Pong
    (games of thousands of steps, scores -21..21) looks like a real score.
    """
    if int(loop.episodes.result()) == 0:
        return math.nan
    return float(loop.train_return.result())
