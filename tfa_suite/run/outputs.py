"""The end of a run: export, proof that the export works, video, curve and result.json."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any

import tensorflow as tf

from tfa_suite.config import RunConfig, TrainConfig, strict_json
from tfa_suite.policy.episodes import EpisodeStats, VideoUnavailable, record_video, run_episodes
from tfa_suite.policy.saved import SavedPolicy
from tfa_suite.run.evaluation import RunEvaluation
from tfa_suite.run.export import export_policy
from tfa_suite.run.reporting import (
    MetricsFile,
    Progress,
    RunClock,
    plot_learning_curve,
    read_metrics,
    total_seconds,
)
from tfa_suite.run.run_dir import RunDir


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
    stopped_by_signal: int | None = None
    # wall_seconds is this process's; this is the run's, over every resumed segment
    # (None in a result.json written before it was recorded).
    total_wall_seconds: float | None = None
    # Why the run's caller stopped it before its end (a tuner's pruner), else None; like a
    # signal, it leaves a checkpoint to resume from and no export.
    stopped_early: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainResult:
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        # null is a NaN figure written as strict JSON (a run stopped before its final score).
        for name in ("final_eval_mean", "final_eval_std"):
            if values.get(name) is None:
                values[name] = math.nan
        return cls(**values)


@dataclasses.dataclass
class RunRecord:
    """What a session has open while it trains: the run dir and the outputs it writes."""

    dir: RunDir
    metrics: MetricsFile
    writer: tf.summary.SummaryWriter
    progress: Progress
    evaluation: RunEvaluation  # its `setup` says how the run's policy is scored
    resumed_from: int  # env steps at the start of this process's segment
    clock: RunClock


def finished_result(run: RunDir, config: TrainConfig) -> TrainResult | None:
    """The stored result if the run in `run` needs no more training under `config`."""
    if not os.path.isfile(run.result):
        return None
    with open(run.result) as f:
        result = TrainResult.from_json(json.load(f))
    if result.stopped_by_signal is not None:
        return None
    solved_in_training = result.solved_at_env_steps is not None
    # The training time at the stop, as a resume counts it (its last metrics row), not
    # result.json's, which adds the export and the final evaluation.
    budget = config.run.max_train_minutes * 60
    out_of_time = budget > 0 and total_seconds(read_metrics(run.metrics)) >= budget
    if (
        result.env_steps >= config.run.num_env_steps
        or (solved_in_training and config.run.stop_at_threshold)
        or out_of_time
    ):
        return result
    return None


def make_result(
    record: RunRecord,
    steps: int,
    train_steps: int,
    final: EpisodeStats | None,
    signal_number: int | None = None,
    stopped_early: str | None = None,
) -> TrainResult:
    solved = record.evaluation.solved
    target = record.evaluation.target
    return TrainResult(
        root_dir=record.dir.root,
        env_steps=steps,
        train_steps=train_steps,
        wall_seconds=record.clock.segment(),
        target_return=target,
        solved=solved is not None
        or (final is not None and target is not None and final.mean >= target),
        solved_at_env_steps=solved.env_steps if solved else None,
        solved_at_seconds=solved.seconds if solved else None,
        final_eval_mean=final.mean if final else math.nan,
        final_eval_std=final.std if final else math.nan,
        evaluations=record.evaluation.history,
        resumed_from_env_steps=record.resumed_from,
        stopped_by_signal=signal_number,
        total_wall_seconds=record.clock.total(),
        stopped_early=stopped_early,
    )


def finish_run(
    record: RunRecord,
    policy: Any,
    train_step: tf.Variable,
    cfg: RunConfig,
    steps: int,
    sampled_policy: Any | None,
) -> TrainResult:
    """Exports `policy`, then proves the export works by scoring and filming it.

    A `sampled_policy` (the agent's, on request) is exported too and reloaded to prove it
    loads; it is not scored here (evaluate.py scores either export).
    """
    run, setup = record.dir, record.evaluation.setup
    export_policy(policy, run.policy, setup.spec, train_step)
    if sampled_policy is not None:
        export_policy(sampled_policy, run.policy_sampled, setup.spec, train_step)
        SavedPolicy(run.policy_sampled)
        print(f"exported sampled policy {run.policy_sampled}", flush=True)
    saved = SavedPolicy(run.policy)
    play = dict(
        seed=setup.seed, max_steps=setup.max_episode_steps, sticky_actions=setup.sticky_actions
    )
    final = run_episodes(saved, setup.spec, setup.episodes, **play)
    cut = f" ({final.cut} cut at --eval_max_episode_steps)" if final.cut else ""
    print(
        f"exported policy {run.policy}: reloaded, return {final.mean:.1f} ± {final.std:.1f} "
        f"over {setup.episodes} episodes{cut}",
        flush=True,
    )
    if cfg.video_episodes:
        try:
            record_video(saved, setup.spec, run.video, cfg.video_episodes, **play)
        except VideoUnavailable as e:
            print(f"note: no video.mp4: {e}", flush=True)
    title = f"{cfg.env} {cfg.agent} seed {cfg.seed}"
    plot_learning_curve(run.metrics, run.curve, title, record.evaluation.target)
    result = make_result(record, steps, int(train_step.numpy()), final)
    with open(run.result + ".tmp", "w") as f:
        json.dump(strict_json(result.to_json()), f, indent=2, allow_nan=False)
    os.replace(run.result + ".tmp", run.result)
    overall = ""
    if record.resumed_from:
        overall = f" ({result.total_wall_seconds:.1f} s over every segment of the run)"
    print(
        f"done: {steps:,} env steps in {result.wall_seconds:.1f} s{overall}; outputs in "
        f"{os.path.abspath(run.root)}",
        flush=True,
    )
    return result
