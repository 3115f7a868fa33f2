"""Periodic greedy evaluation during training, and the decision that a run is solved.

With a gymnasium-only environment every evaluation plays the gymnasium env. With a
TF-native environment the evaluation runs in the graph (`graph_eval.py`) and, when it
reaches the target, is confirmed on gymnasium with the same fixed seeds that
`evaluate.py` uses: only a gymnasium evaluation can declare a run solved.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import tensorflow as tf
from tf_agents.trajectories import time_step as ts

from tfa_suite.envs.atari_eval import atari_game
from tfa_suite.envs.loading import EnvSpec
from tfa_suite.policy.episodes import ActionFn, EpisodeStats, run_episodes
from tfa_suite.run.graph_eval import GraphEvaluator
from tfa_suite.run.reporting import MetricsFile, Progress, RunClock


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
class Solved:
    env_steps: int
    seconds: float | None  # None when the solve happened before a resume


@dataclasses.dataclass(frozen=True)
class EvalSetup:
    """What a greedy evaluation plays: the env, the policy, how many episodes and seeds."""

    spec: EnvSpec
    greedy: ActionFn
    graph_evaluator: GraphEvaluator | None
    episodes: int
    seed: int
    target: float | None
    sticky_actions: float = 0.0
    max_episode_steps: int = 27_000


class RunEvaluation:
    def __init__(
        self,
        setup: EvalSetup,
        writer: tf.summary.SummaryWriter,
        progress: Progress,
        metrics: MetricsFile,
        clock: RunClock,
    ):
        self.setup = setup
        self._graph = setup.graph_evaluator
        self.target = setup.target
        self._writer, self._progress, self._metrics = writer, progress, metrics
        self._clock = clock
        self.history: list[dict] = []
        self.solved: Solved | None = None

    def restore(self, rows: list[dict[str, float]]) -> None:
        """Rebuilds the history (and any solve) from metrics.csv rows of a resumed run."""
        for row in rows:
            for column, source in (("eval_mean", "eval"), ("confirm_mean", "gymnasium")):
                if not math.isnan(row.get(column, math.nan)):
                    std = row[column.replace("mean", "std")]
                    self._remember(int(row["env_steps"]), row[column], std, source, None)

    def _remember(
        self, step: int, mean: float, std: float, source: str, seconds: float | None
    ) -> None:
        self.history.append({"env_steps": step, "mean": mean, "std": std, "source": source})
        decisive = source == "gymnasium" or (source == "eval" and self._graph is None)
        if decisive and self.target is not None and mean >= self.target and self.solved is None:
            self.solved = Solved(step, seconds)

    def __call__(self, step: int, train_steps: int) -> bool:
        """Evaluates at `step`; returns True when this evaluation solved the run."""
        was_solved = self.solved is not None
        setup = self.setup
        if self._graph is not None:
            stats = self._graph()
            where = "in-graph env"
        else:
            stats = run_episodes(
                setup.greedy,
                setup.spec,
                setup.episodes,
                seed=setup.seed,
                max_steps=setup.max_episode_steps,
                sticky_actions=setup.sticky_actions,
            )
            where = "ALE" if atari_game(setup.spec.env) else "gymnasium"
        row = {
            "env_steps": step,
            "train_steps": train_steps,
            "eval_mean": stats.mean,
            "eval_std": stats.std,
        }
        self._report(step, stats, "eval/", f"eval @ {step:,} env steps ({where})")
        self._remember(step, stats.mean, stats.std, "eval", self._elapsed())
        if self._graph is not None and self.target is not None and stats.mean >= self.target:
            confirm = run_episodes(
                setup.greedy,
                setup.spec,
                setup.episodes,
                seed=setup.seed,
                max_steps=setup.max_episode_steps,
            )
            self._report(step, confirm, "eval_gymnasium/", "  confirmed on gymnasium")
            row.update(confirm_mean=confirm.mean, confirm_std=confirm.std)
            self._remember(step, confirm.mean, confirm.std, "gymnasium", self._elapsed())
        row["wall_seconds"] = self._elapsed()
        row["total_wall_seconds"] = self._clock.total()
        self._metrics.write(row)
        return self.solved is not None and not was_solved

    def latest_mean(self) -> float:
        """The mean return of the newest evaluation (the run's own, not a confirmation)."""
        return next(h["mean"] for h in reversed(self.history) if h["source"] == "eval")

    def _elapsed(self) -> float:
        return self._clock.segment()

    def _report(self, step: int, stats: EpisodeStats, tag: str, label: str) -> None:
        with self._writer.as_default(step=step):
            tf.summary.scalar(tag + "mean_return", stats.mean)
            tf.summary.scalar(tag + "std_return", stats.std)
        cut = ""
        if stats.cut:
            cut = (
                f" ({stats.cut} cut at --eval_max_episode_steps="
                f"{self.setup.max_episode_steps:,}: the env may have no time limit)"
            )
        self._progress.message(
            f"{label}: return {stats.mean:.1f} ± {stats.std:.1f} over "
            f"{self.setup.episodes} episodes{cut}"
        )
