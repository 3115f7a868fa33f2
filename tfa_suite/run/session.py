"""The training session: run dir, resume, signals, the event schedule and the run outputs.

`Session.run()` drives any loop (`tfa_suite.loops`) through the same steps:

1. open the run dir (or find the run there already complete) and restore the newest
   checkpoint;
2. prefill: the loop's initial collection, or its refill after a resume;
3. compiled calls up to the next event, then that event: a metrics row, an evaluation
   (which may solve the run), a checkpoint;
4. on a signal, a checkpoint and an early return; otherwise the run's end
   (`tfa_suite.run.outputs.finish_run`): export, reload, score, video and curve.

A caller may pass `on_evaluation(env_steps, mean_return)`, told of each evaluation as it
happens (not of those a resume restores); a reason it returns stops the run as a signal
does, checkpoint written, so a tuner's pruner can end a run that lags its peers.

It names no agent and no loop kind: what it logs besides the loss comes from the agent's
`scalars`.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from typing import Any

import tensorflow as tf

from tfa_suite.errors import EnvironmentFailed, UserError
from tfa_suite.run.build import Parts
from tfa_suite.run.checkpoints import RunCheckpoint
from tfa_suite.run.evaluation import EvalSetup, RunEvaluation, greedy_action_fn
from tfa_suite.run.interrupts import StopRequest, stop_on_signals
from tfa_suite.run.outputs import RunRecord, TrainResult, finish_run, make_result
from tfa_suite.run.reporting import (
    MetricsFile,
    Progress,
    RunClock,
    metric_fields,
    read_metrics,
    total_seconds,
)
from tfa_suite.run.rows import RowWriter
from tfa_suite.run.run_dir import RunDir, open_run_dir
from tfa_suite.run.schedule import EventSchedule


class TrainingDiverged(UserError):
    """The loss became NaN or Inf."""


# (env steps, mean greedy return) of an evaluation -> None to train on, or a reason to stop.
EvaluationHook = Callable[[int, float], str | None]


class Session:
    def __init__(
        self,
        parts: Parts,
        target: float | None,
        start_time: float,
        on_evaluation: EvaluationHook | None = None,
    ):
        self.parts = parts
        self.config = parts.config
        self.loop = parts.loop
        self.target = target
        self.start_time = start_time
        self.on_evaluation = on_evaluation
        self.train_step = parts.built.agent.train_step_counter

    # --- 1. run dir and resume ------------------------------------------------------

    def run(self, finished: TrainResult | None) -> TrainResult:
        """Runs the session; `finished` is the run dir's stored result if the run there
        needs no more training (`tfa_suite.run.outputs.finished_result`)."""
        run, resuming = open_run_dir(self.config)
        try:
            return self._run(run, resuming, finished)
        finally:
            run.release()

    def _run(self, run: RunDir, resuming: bool, finished: TrainResult | None) -> TrainResult:
        if finished is not None:
            print(
                f"run in {os.path.abspath(run.root)} is already complete "
                f"({finished.env_steps:,} env steps, final return "
                f"{finished.final_eval_mean:.1f}); to train on, pass a larger --num_env_steps "
                "(and --stop_at_threshold=false if it stopped on solving, a larger "
                "--max_train_minutes if it ran out of time), or a new "
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
        record = self._open_outputs(run, resuming)
        with stop_on_signals() as stop:
            steps = self._train(record, ckpt, stop)
            if not ckpt.has(steps):
                # Re-saving the same step number would rewrite the newest good checkpoint.
                ckpt.save(steps)
            record.metrics.close()
            if stop.requested:
                why = f" ({stop.early})" if stop.early else ""
                print(
                    f"stopped at env step {steps:,}{why}; checkpoint saved in "
                    f"{run.checkpoints}. Run the same command to resume.",
                    flush=True,
                )
                train_steps = int(self.train_step.numpy())
                return make_result(record, steps, train_steps, None, stop.signal_number, stop.early)
        built = self.parts.built
        return finish_run(
            record,
            built.greedy_policy,
            self.train_step,
            self.config.run,
            steps,
            sampled_policy=built.sampled_policy,
        )

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
            note = self.loop.resume_note()
            print(
                f"resumed from {restored} at env step {steps:,}" + (f"; {note}" if note else ""),
                flush=True,
            )
        return ckpt

    def _open_outputs(self, run: RunDir, resuming: bool) -> RunRecord:
        resumed_from = int(self.loop.env_steps.result())
        built, cfg = self.parts.built, self.config.run
        metrics = MetricsFile(
            run.metrics,
            resume_from_step=resumed_from if resuming else None,
            fields=metric_fields(list(built.scalars) + list(self.loop.perf_fields)),
        )
        writer = tf.summary.create_file_writer(run.summaries)
        setup = EvalSetup(
            spec=self.parts.spec,
            greedy=greedy_action_fn(
                built.greedy_policy, self.parts.tf_env.time_step_spec().observation
            ),
            graph_evaluator=self.parts.graph_evaluator,
            episodes=cfg.eval_episodes,
            seed=cfg.eval_seed,
            target=self.target,
            sticky_actions=cfg.eval_sticky_actions,
            max_episode_steps=cfg.eval_max_episode_steps,
        )
        rows = read_metrics(run.metrics)  # the rows up to the restored checkpoint
        clock = RunClock(self.start_time, total_seconds(rows) if resuming else 0.0)
        progress = Progress(
            cfg.num_env_steps,
            resumed_from,
            seconds_left=lambda: clock.seconds_left(cfg.max_train_minutes),
        )
        evaluation = RunEvaluation(setup, writer, progress, metrics, clock)
        evaluation.restore(rows)
        return RunRecord(run, metrics, writer, progress, evaluation, resumed_from, clock)

    # --- 2. and 3. prefill and training ----------------------------------------------

    def _prefill(self, record: RunRecord, steps: int) -> int:
        """A fresh run collects its initial data here; a resumed run whose replay was not
        checkpointed refills it. The prefill counts toward --num_env_steps, so it never
        runs past the budget."""
        missing = min(self.loop.prefill_steps(), self.config.run.num_env_steps - steps)
        if missing > 0:
            record.progress.message(
                f"collecting {missing:,} steps into the replay buffer before training"
            )
            self._call(self.loop.prefill, steps + missing)
            steps = int(self.loop.env_steps.result())
        return steps

    def _train(self, record: RunRecord, ckpt: RunCheckpoint, stop: StopRequest) -> int:
        cfg = self.config.run
        steps = int(self.loop.env_steps.result())
        already_solved = record.evaluation.solved is not None and cfg.stop_at_threshold
        out_of_time = self._out_of_time(record)
        if steps >= cfg.num_env_steps or already_solved or out_of_time:
            # No train step will run, so the optimizer's slots are never created and
            # their saved values are never read: that is expected, not a mismatch. A run
            # resumed only to finish goes straight to the export.
            ckpt.expect_partial()
            if already_solved:
                solved_at = record.evaluation.solved.env_steps
                record.progress.message(f"solved at env step {solved_at:,} before resuming")
            elif out_of_time and steps < cfg.num_env_steps:
                record.progress.message(
                    f"--max_train_minutes={cfg.max_train_minutes:g} was spent before resuming"
                )
            return steps
        steps = self._prefill(record, steps)
        traced = self.loop.compile()
        if traced is not None:
            # Tracing is part of a run's cost (TF-Agents' PPO step takes seconds); a loop
            # that traces up front reports it here, before its first compiled call.
            record.progress.message(f"traced the training loop in {traced:.1f} s")
        schedule = EventSchedule(
            steps, cfg.eval_interval, cfg.checkpoint_interval, cfg.metrics_interval
        )
        rows = RowWriter(
            record, self.loop, self.train_step, self.parts.built.scalars,
            cfg.log_interval_seconds, cfg.num_env_steps,
        )  # fmt: skip
        while steps < cfg.num_env_steps and not stop.requested:
            # Reaching an event can take a few calls; see the loop's iterations_within.
            iterations = self.loop.iterations_within(schedule.next_event(cfg.num_env_steps) - steps)
            call_loss = self._call(self.loop.run, iterations)
            ckpt.assert_fully_restored()  # once; a no-op for a fresh run
            steps = int(self.loop.env_steps.result())
            if not math.isfinite(call_loss):
                raise TrainingDiverged(self._diverged_message(str(call_loss)))
            rows.losses.add(call_loss, iterations)
            out_of_time = self._out_of_time(record)
            ending = steps >= cfg.num_env_steps or out_of_time
            if self._events(schedule, steps, record, rows, ckpt, stop, ending):
                break
            if out_of_time:
                record.progress.message(
                    f"--max_train_minutes={cfg.max_train_minutes:g} reached at env step "
                    f"{steps:,}; stopping"
                )
                break
        return steps

    def _out_of_time(self, record: RunRecord) -> bool:
        """--max_train_minutes is spent, counting the run's earlier segments."""
        return record.clock.seconds_left(self.config.run.max_train_minutes) <= 0

    def _events(
        self,
        schedule: EventSchedule,
        steps: int,
        record: RunRecord,
        rows: RowWriter,
        ckpt: RunCheckpoint,
        stop: StopRequest,
        ending: bool,
    ) -> bool:
        """The events due at `steps`, in order; True when an evaluation solved the run or
        the caller's `on_evaluation` asked it to stop (`stop.early`). `ending`: the run's
        length or time is reached here, so its curve gets this row whenever it falls."""
        cfg = self.config.run
        if schedule.due("metrics", steps) or ending:
            schedule.advance("metrics", steps)
            rows.write(steps)
        if cfg.eval_interval and schedule.due("eval", steps) and not stop.requested:
            schedule.advance("eval", steps)
            if record.evaluation(steps, int(self.train_step.numpy())) and cfg.stop_at_threshold:
                record.progress.message(f"solved: greedy return >= {self.target:g}; stopping")
                return True
            if self.on_evaluation is not None:
                stop.early = self.on_evaluation(steps, record.evaluation.latest_mean())
                if stop.early:
                    return True
        if schedule.due("checkpoint", steps):
            schedule.advance("checkpoint", steps)
            ckpt.save(steps)
        return False

    def _diverged_message(self, value: str) -> str:
        return (
            f"loss became {value} near env step {int(self.loop.env_steps.result()):,}; stopped "
            "without saving, so the newest checkpoint is the last good one. Try a lower "
            "learning rate or gradient clipping, or check the environment's rewards"
        )

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
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
