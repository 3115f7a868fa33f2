"""What a run shows and leaves behind: progress lines, metrics.csv and the curve PNG."""

from __future__ import annotations

import csv
import math
import os
import sys
import time
from collections.abc import Callable


def metric_fields(scalars: list[str]) -> tuple[str, ...]:
    """metrics.csv columns: the run's figures, the agent's own scalars, then evaluations.

    `wall_seconds` is this process's clock (it starts again at 0 when a run resumes);
    `total_wall_seconds` adds the earlier segments' time: the run's own.
    """
    return (
        "env_steps",
        "train_steps",
        "wall_seconds",
        "total_wall_seconds",
        "env_steps_per_sec",
        "loss",
        *scalars,
        "train_return",
        "eval_mean",
        "eval_std",
        "confirm_mean",
        "confirm_std",
    )


def _fmt_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


class MetricsFile:
    """metrics.csv, appended row by row and flushed, so a kill loses at most one row.

    On resume, rows past the restored checkpoint are dropped: that stretch of training
    is being redone, and keeping both would draw the curve twice over the same steps.
    Rows written before total_wall_seconds existed get it, summed over their segments.
    """

    def __init__(self, path: str, resume_from_step: int | None, fields: tuple[str, ...]):
        self.path = path
        self.fields = fields
        rows = []
        if resume_from_step is not None and os.path.exists(path):
            with open(path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["env_steps"]) <= resume_from_step]
            _fill_totals(rows)
        tmp = path + ".tmp"
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, path)
        self._file = open(path, "a", newline="")
        self._writer = csv.DictWriter(self._file, fieldnames=fields)

    def write(self, row: dict[str, float]) -> None:
        self._writer.writerow({k: _csv_value(row.get(k)) for k in self.fields})
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def _fill_totals(rows: list[dict[str, str]]) -> None:
    """total_wall_seconds for rows written before it was a column (in place)."""
    if not rows or all(r.get("total_wall_seconds") for r in rows):
        return
    floats = [{k: float(v) if v else math.nan for k, v in r.items() if k} for r in rows]
    totals = {id(row): total for row, total in elapsed_over_segments(floats)}
    for raw, row in zip(rows, floats):
        if not raw.get("total_wall_seconds") and id(row) in totals:
            raw["total_wall_seconds"] = _csv_value(totals[id(row)])


def _fmt_return(value: float) -> str:
    return f"{'n/a':>7}" if math.isnan(value) else f"{value:7.1f}"


def _csv_value(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


class RunClock:
    """A run's time: this process's segment since `start_time`, and the segments before it."""

    def __init__(self, start_time: float, previous_seconds: float = 0.0):
        self.start_time = start_time
        self.previous_seconds = previous_seconds

    def segment(self) -> float:
        return time.monotonic() - self.start_time

    def total(self) -> float:
        return self.previous_seconds + self.segment()

    def seconds_left(self, budget_minutes: float) -> float:
        """What remains of a --max_train_minutes budget over every segment (inf: none)."""
        return 60 * budget_minutes - self.total() if budget_minutes > 0 else math.inf


def elapsed_over_segments(rows: list[dict[str, float]]):  # noqa: ANN201
    """(row, the run's seconds up to it, summed over resumed segments); rows without a time
    are skipped. A row's total_wall_seconds is used where the run wrote one; before that
    column existed, each segment's span is its last wall_seconds, which restarts at 0."""
    done, previous = 0.0, 0.0
    for row in rows:
        total = row.get("total_wall_seconds", math.nan)
        seconds = row.get("wall_seconds", math.nan)
        if not math.isnan(total):
            done, previous = total - seconds if not math.isnan(seconds) else total, seconds
            yield row, total
            continue
        if math.isnan(seconds):
            continue
        if seconds < previous:  # a resumed segment: its own clock starts again at 0
            done += previous
        previous = seconds
        yield row, done + seconds


def total_seconds(rows: list[dict[str, float]]) -> float:
    """The run's training seconds at its last row, over every segment (0 with no rows)."""
    total = 0.0
    for _, total in elapsed_over_segments(rows):  # noqa: B007  the last row's is the run's
        pass
    return total


def read_metrics(path: str) -> list[dict[str, float]]:
    with open(path, newline="") as f:
        return [
            {k: float(v) if v != "" else math.nan for k, v in row.items()}
            for row in csv.DictReader(f)
        ]


class Progress:
    """One progress line every few seconds: steps, steps/s, loss, returns and ETA."""

    def __init__(
        self,
        total_steps: int,
        start_steps: int,
        stream=None,  # noqa: ANN001
        seconds_left: Callable[[], float] | None = None,
    ):
        self.total = total_steps
        self.start_steps = start_steps
        # A run with a time budget (--max_train_minutes) ends at whichever comes first, its
        # length or its budget; the ETA is the sooner of the two.
        self._seconds_left = seconds_left
        self.start_time = time.monotonic()
        # None: whatever sys.stdout is when a line is printed (a default bound at import
        # would keep writing to a stream that was replaced since).
        self._stream = stream
        self._last_time = self.start_time
        self._last_steps = start_steps

    @property
    def stream(self):  # noqa: ANN201
        return self._stream if self._stream is not None else sys.stdout

    def rate(self, steps: int) -> float:
        """Env steps/s since the previous call (the recent rate, which the ETA uses)."""
        now = time.monotonic()
        rate = (steps - self._last_steps) / max(now - self._last_time, 1e-9)
        self._last_time, self._last_steps = now, steps
        return rate

    def line(
        self,
        steps: int,
        rate: float,
        loss: float,
        scalars: dict[str, float],
        train_return: float,
    ) -> str:
        # A call may end past the total (by up to one iteration or round): no negative ETA.
        eta = max(self.total - steps, 0) / rate if rate > 0 else math.inf
        budget = max(self._seconds_left(), 0.0) if self._seconds_left else math.inf
        eta_text = f"ETA {_fmt_duration(min(eta, budget))}"
        if budget < eta:
            eta_text += " (time budget)"
        pct = 100.0 * steps / self.total
        text = (
            f"[{_fmt_duration(time.monotonic() - self.start_time):>6}] "
            f"step {steps:>9,}/{self.total:,} ({pct:4.1f}%) | {rate:7,.0f} steps/s | "
            f"loss {loss:8.4f} | "
            + "".join(f"{name} {value:.3g} | " for name, value in scalars.items())
            + f"train return {_fmt_return(train_return)} | "
            + eta_text
        )
        print(text, file=self.stream, flush=True)
        return text

    def message(self, text: str) -> None:
        print(
            f"[{_fmt_duration(time.monotonic() - self.start_time):>6}] {text}",
            file=self.stream,
            flush=True,
        )


def plot_learning_curve(metrics_path: str, png_path: str, title: str, target: float | None) -> None:
    """Eval mean ± std and the training return against env steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(metrics_path)
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    train = [(r["env_steps"], r["train_return"]) for r in rows if not math.isnan(r["train_return"])]
    if train:
        ax.plot(*zip(*train), color="tab:gray", alpha=0.6, label="train return (last episodes)")
    evals = [
        (r["env_steps"], r["eval_mean"], r["eval_std"])
        for r in rows
        if not math.isnan(r["eval_mean"])
    ]
    if evals:
        steps, mean, std = (list(x) for x in zip(*evals))
        ax.plot(steps, mean, "o-", color="tab:blue", label="greedy eval mean")
        lo = [m - s for m, s in zip(mean, std)]
        hi = [m + s for m, s in zip(mean, std)]
        ax.fill_between(steps, lo, hi, color="tab:blue", alpha=0.2, label="± std")
    confirms = [
        (r["env_steps"], r["confirm_mean"])
        for r in rows
        if not math.isnan(r.get("confirm_mean", math.nan))
    ]
    if confirms:
        ax.plot(
            *zip(*confirms), "*", color="tab:red", markersize=12, label="gymnasium confirmation"
        )
    if target is not None and math.isfinite(target):
        ax.axhline(target, color="tab:green", linestyle="--", label=f"target {target:g}")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("episode return")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[1]:
        ax.legend(loc="best")
    else:  # a short run in which no episode ended and nothing was evaluated
        ax.text(0.5, 0.5, "no episode finished yet", ha="center", transform=ax.transAxes)
    fig.tight_layout()
    tmp = png_path + ".tmp.png"
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, png_path)
