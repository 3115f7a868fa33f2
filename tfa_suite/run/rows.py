"""A metrics row: metrics.csv, TensorBoard scalars and the progress line, at each metrics event."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable

import tensorflow as tf

from tfa_suite.loops.base import Loop
from tfa_suite.run.outputs import RunRecord


@dataclasses.dataclass
class Losses:
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


def train_return(loop: Loop) -> float:
    """Mean return of the last training episodes; NaN (shown as n/a) before the first ends.

    TF-Agents' AverageReturnMetric reads 0.0 while its buffer is empty, which on Pong
    (games of thousands of steps, scores -21..21) looks like a real score.
    """
    if int(loop.episodes.result()) == 0:
        return math.nan
    return float(loop.train_return.result())


class RowWriter:
    """Writes a row at each metrics event; a progress line at most every `interval` s."""

    def __init__(
        self,
        record: RunRecord,
        loop: Loop,
        train_step: tf.Variable,
        scalars: dict[str, Callable[[], tf.Tensor]],
        interval: float,
        total_steps: int,
    ):
        self._record, self._loop, self._train_step = record, loop, train_step
        self._scalars = scalars
        self._interval, self._total = interval, total_steps
        self._next_print = time.monotonic()  # the first progress line comes at the first row
        self.losses = Losses()

    def write(self, steps: int) -> None:
        record, loop = self._record, self._loop
        loss = self.losses.take()
        show = time.monotonic() >= self._next_print or steps >= self._total
        if show:
            self._next_print = time.monotonic() + self._interval
        scalars = {name: float(fn()) for name, fn in self._scalars.items()}
        perf = loop.perf_values()  # the loop's own throughput (Ray actors' env steps/s)
        returns = train_return(loop)
        rate = record.progress.rate(steps)
        if show:
            record.progress.line(steps, rate, loss, scalars, returns)
        with record.writer.as_default(step=steps):
            tf.summary.scalar("train/loss", loss)
            if not math.isnan(returns):
                tf.summary.scalar("train/episode_return", returns)
            for name, value in scalars.items():
                tf.summary.scalar(f"train/{name}", value)
            tf.summary.scalar("perf/env_steps_per_sec", rate)
            for name, value in perf.items():
                tf.summary.scalar(f"perf/{name}", value)
        record.metrics.write(
            {
                "env_steps": steps,
                "train_steps": int(self._train_step.numpy()),
                "wall_seconds": record.clock.segment(),
                "total_wall_seconds": record.clock.total(),
                "env_steps_per_sec": rate,
                "loss": loss,
                **scalars,
                **perf,
                "train_return": returns,
            }
        )
