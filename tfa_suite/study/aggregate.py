"""Many seeds, with honest intervals: the interquartile mean (IQM) of a group of runs with a
95% stratified-bootstrap confidence interval, the probability that one agent improves on
another, and the sample-efficiency curve, after Agarwal et al. 2021 with their `rliable`.

It reads finished run dirs only (config.json, result.json, metrics.csv), so it works on any
runs, old or new. A group is the runs of one agent on one env; a run's score is its final
greedy evaluation of the exported policy (`final_eval_mean` in result.json, the score
`evaluate.py` reproduces). Each env is its own task: scores are not normalized across envs.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Sequence

import numpy as np

from tfa_suite.config import flatten_saved
from tfa_suite.errors import UserError
from tfa_suite.run.reporting import read_metrics

# Bootstrap resamples per interval. rliable's paper used 50,000; its arch backend calls the
# statistic once per resample in Python (about 0.5 ms each here), and 2,000 already puts a
# 95% interval's ends within a few hundredths of their 50,000-resample values (--reps).
BOOTSTRAP_REPS = 2_000
CURVE_POINTS = 40


@dataclasses.dataclass(frozen=True)
class Run:
    root_dir: str
    agent: str
    env: str
    seed: int
    score: float
    curve: list[tuple[int, float]]  # (env steps, greedy eval mean)
    env_steps: int

    @property
    def group(self) -> str:
        return f"{self.agent} on {self.env}"


def load_run(root_dir: str) -> Run:
    """A finished run's agent, env, seed, final score and evaluation curve."""
    paths = {name: os.path.join(root_dir, name) for name in ("config.json", "result.json")}
    missing = [name for name, path in paths.items() if not os.path.isfile(path)]
    if missing:
        raise UserError(f"{root_dir} is not a finished run ({', '.join(missing)} missing)")
    with open(paths["config.json"]) as f:
        config = flatten_saved(json.load(f))
    with open(paths["result.json"]) as f:
        result = json.load(f)
    score = result.get("final_eval_mean")
    if score is None or not math.isfinite(score):
        raise UserError(f"{root_dir} has no final score (stopped before its export?)")
    rows = read_metrics(os.path.join(root_dir, "metrics.csv"))
    curve = [
        (int(r["env_steps"]), r["eval_mean"])
        for r in rows
        if not math.isnan(r.get("eval_mean", math.nan))
    ]
    return Run(
        root_dir, str(config["agent"]), str(config["env"]), int(config["seed"]), float(score),
        curve, int(result["env_steps"]),
    )  # fmt: skip


def groups(runs: Sequence[Run]) -> dict[str, list[Run]]:
    out: dict[str, list[Run]] = {}
    for run in runs:
        out.setdefault(run.group, []).append(run)
    return out


def _generator(seed: int) -> np.random.RandomState:
    """rliable 1.2 passes its random_state to arch's bootstrap, which warns that the keyword
    is deprecated (a FutureWarning on every interval); the results are the same, so the
    warning is silenced here rather than in every caller."""
    import warnings

    warnings.filterwarnings("ignore", "random_state is deprecated", FutureWarning)
    return np.random.RandomState(seed)


def interval_estimates(
    by_group: dict[str, np.ndarray], seed: int = 0, reps: int = BOOTSTRAP_REPS
) -> dict[str, dict]:
    """Median and IQM with 95% stratified-bootstrap intervals, per group of [runs, 1] scores."""
    from rliable import library as rly
    from rliable import metrics

    # rliable's aggregate_median is the median over tasks of each task's mean over runs, so
    # with one env per group it is the mean; the median over runs is np.median.
    def func(scores: np.ndarray) -> np.ndarray:
        return np.array([np.median(scores), metrics.aggregate_iqm(scores)])

    points, intervals = rly.get_interval_estimates(
        by_group, func, reps=reps, random_state=_generator(seed)
    )
    return {
        name: {
            "median": float(points[name][0]),
            "iqm": float(points[name][1]),
            "iqm_ci": [float(intervals[name][0][1]), float(intervals[name][1][1])],
            "median_ci": [float(intervals[name][0][0]), float(intervals[name][1][0])],
            "runs": int(by_group[name].shape[0]),
        }
        for name in by_group
    }


def probability_of_improvement(
    x: np.ndarray, y: np.ndarray, seed: int = 0, reps: int = BOOTSTRAP_REPS
) -> dict[str, float]:
    """P(a run of x scores above a run of y), with its 95% stratified-bootstrap interval."""
    from rliable import library as rly
    from rliable import metrics

    points, intervals = rly.get_interval_estimates(
        {"pair": [x, y]},
        lambda a, b: np.array([metrics.probability_of_improvement(a, b)]),
        reps=reps,
        random_state=_generator(seed),
    )
    return {
        "probability": float(points["pair"][0]),
        "ci": [float(intervals["pair"][0][0]), float(intervals["pair"][1][0])],
    }


def curve_scores(runs: Sequence[Run]) -> tuple[np.ndarray, np.ndarray]:
    """(env steps grid, [runs, 1, points] greedy scores) of a group on a common grid.

    A run that stopped early (solved) keeps its last evaluation from then on: stopping is
    the policy it ends with. Before its first evaluation a run has none, so the grid
    starts at the latest first evaluation.
    """
    start = max(r.curve[0][0] for r in runs)
    end = max(r.curve[-1][0] for r in runs)
    grid = np.unique(np.linspace(start, end, CURVE_POINTS).astype(np.int64))
    scores = np.empty((len(runs), 1, len(grid)))
    for i, run in enumerate(runs):
        steps = np.array([s for s, _ in run.curve])
        means = np.array([m for _, m in run.curve])
        scores[i, 0] = means[np.searchsorted(steps, grid, side="right") - 1]
    return grid, scores


def curve_estimates(runs: Sequence[Run], seed: int = 0, reps: int = BOOTSTRAP_REPS) -> dict:
    """The group's IQM of the greedy score at each grid point, with its 95% interval."""
    from rliable import library as rly
    from rliable import metrics

    grid, scores = curve_scores(runs)

    def func(s: np.ndarray) -> np.ndarray:
        return np.array([metrics.aggregate_iqm(s[..., t]) for t in range(s.shape[-1])])

    points, intervals = rly.get_interval_estimates(
        {"g": scores}, func, reps=max(reps // 10, 100), random_state=_generator(seed)
    )
    return {
        "env_steps": grid.tolist(),
        "iqm": points["g"].tolist(),
        "low": intervals["g"][0].tolist(),
        "high": intervals["g"][1].tolist(),
    }


REPORT_FILES = (
    "aggregate.json",
    "aggregate.md",
    "interval_estimates.png",
    "sample_efficiency.png",
)


def aggregate(
    root_dirs: Sequence[str], out_dir: str, overwrite: bool = False, reps: int = BOOTSTRAP_REPS
) -> dict:
    """Scores, intervals, pairwise improvements and curves of `root_dirs`, into `out_dir`."""
    if not root_dirs:
        raise UserError("name at least one run dir")
    existing = [f for f in REPORT_FILES if os.path.exists(os.path.join(out_dir, f))]
    if existing and not overwrite:
        raise UserError(f"{out_dir} already has {', '.join(existing)}; pass --overwrite")
    runs = [load_run(d) for d in root_dirs]
    by_group = groups(runs)
    scores = {g: np.array([[r.score] for r in rs]) for g, rs in by_group.items()}
    summary = {
        "groups": interval_estimates(scores, reps=reps),
        "improvements": [
            {"x": x, "y": y, **probability_of_improvement(scores[x], scores[y], reps=reps)}
            for x in by_group
            for y in by_group
            if x < y and by_group[x][0].env == by_group[y][0].env
        ],
        "curves": {g: curve_estimates(rs, reps=reps) for g, rs in by_group.items()},
        "bootstrap_reps": reps,
        "runs": [dataclasses.asdict(r) | {"curve": None} for r in runs],
    }
    for name, entry in summary["groups"].items():
        values = scores[name][:, 0]
        entry.update(mean=float(values.mean()), std=float(values.std()))
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "aggregate.json"), "w") as f:
        json.dump(summary, f, indent=2)
    with open(os.path.join(out_dir, "aggregate.md"), "w") as f:
        f.write(markdown(summary) + "\n")
    plot_intervals(summary, os.path.join(out_dir, "interval_estimates.png"))
    plot_curves(summary, by_group, os.path.join(out_dir, "sample_efficiency.png"))
    return summary


def markdown(summary: dict) -> str:
    lines = [
        "| agent on env | runs | median [95% CI] | IQM [95% CI] | mean ± std |",
        "|---|---:|---|---|---|",
    ]
    for name, g in summary["groups"].items():
        lines.append(
            f"| {name} | {g['runs']} | {g['median']:.1f} [{g['median_ci'][0]:.1f}, "
            f"{g['median_ci'][1]:.1f}] | {g['iqm']:.1f} [{g['iqm_ci'][0]:.1f}, "
            f"{g['iqm_ci'][1]:.1f}] | {g['mean']:.1f} ± {g['std']:.1f} |"
        )
    if summary["improvements"]:
        lines += ["", "| X | Y | P(X > Y) [95% CI] |", "|---|---|---|"]
        for p in summary["improvements"]:
            lines.append(
                f"| {p['x']} | {p['y']} | {p['probability']:.2f} "
                f"[{p['ci'][0]:.2f}, {p['ci'][1]:.2f}] |"
            )
    return "\n".join(lines)


def _save(fig, path: str) -> None:  # noqa: ANN001
    import matplotlib.pyplot as plt

    tmp = path + ".tmp.png"
    fig.savefig(tmp, bbox_inches="tight")
    plt.close(fig)
    os.replace(tmp, path)


def plot_intervals(summary: dict, path: str) -> None:
    """Median and IQM with their 95% intervals, one panel per env (scores on different
    envs share no scale), a row per agent."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_env: dict[str, list[str]] = {}
    for name in summary["groups"]:
        by_env.setdefault(name.split(" on ", 1)[1], []).append(name)
    fig, axes = plt.subplots(
        len(by_env), 1, figsize=(7, 1.2 + 0.7 * len(summary["groups"])), squeeze=False
    )
    for ax, (env, names) in zip(axes[:, 0], sorted(by_env.items())):
        for row, name in enumerate(names):
            g = summary["groups"][name]
            for offset, (stat, color) in enumerate((("median", "tab:blue"), ("iqm", "tab:orange"))):
                low, high = g[f"{stat}_ci"]
                y = row + 0.15 * (offset * 2 - 1)
                ax.plot([low, high], [y, y], color=color, linewidth=6, alpha=0.5)
                ax.plot([g[stat]], [y], "|", color="black", markersize=12)
        ax.set_yticks(range(len(names)), [n.split(" on ")[0] for n in names])
        ax.set_ylim(-0.6, len(names) - 0.4)
        ax.set_title(f"{env}: median (blue) and IQM (orange), 95% CIs")
        ax.set_xlabel("final greedy return")
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    _save(fig, path)


def plot_curves(summary: dict, by_group: dict[str, list[Run]], path: str) -> None:
    """IQM of the greedy score against env steps, with its 95% band, one panel per env."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = sorted({rs[0].env for rs in by_group.values()})
    fig, axes = plt.subplots(1, len(envs), figsize=(6 * len(envs), 4), squeeze=False)
    for ax, env in zip(axes[0], envs):
        for name, runs in by_group.items():
            if runs[0].env != env:
                continue
            c = summary["curves"][name]
            ax.plot(c["env_steps"], c["iqm"], label=f"{runs[0].agent} ({len(runs)} runs)")
            ax.fill_between(c["env_steps"], c["low"], c["high"], alpha=0.25)
        ax.set_title(env)
        ax.set_xlabel("env steps")
        ax.set_ylabel("IQM greedy return (95% CI)")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
    fig.tight_layout()
    _save(fig, path)
