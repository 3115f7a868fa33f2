"""Pong from pixels: the shipped policy gradient on three seeds to +18, and PPO beside it.

    python benchmarks/pong_pg_results.py                  # the missing runs, then the report
    python benchmarks/pong_pg_results.py --report_only    # the report from the runs on disk
    make results-pong-pg ARGS=...                         # the same

1. REINFORCE, `experiments/configs/pong_pg.cfg` as shipped, seeds 0-2, one at a time: each
   trains until a greedy evaluation of 10 whole games has a mean >= +18 (--target), or to
   --cap env steps, evaluating every 250,000 env steps.
2. PPO, `experiments/configs/pong_ppo.cfg`, seed 0, for the same wall-clock budget as one
   PG run (--max_train_minutes): the median of the PG runs' training minutes, unless
   --ppo_minutes says otherwise. It does not stop at +18, so its curve covers the budget.
3. Each run's exports (greedy `policy/` and sampling `policy_sampled/`) play 10 games in
   a fresh process, with and without sticky actions (0.25, Machado et al. 2018), game
   seeds from 5,000,000 (never used in training): `experiments/evaluate.py`.
4. `benchmarks/export_run.py --target=0 --target=18` copies each run's curve and figures
   to `results/pong_pg-seed<S>` and `results/pong_ppo-seed0`, with the four scores.

SIGTERM or SIGINT is passed on to the running training, which checkpoints; the same
command resumes. The report goes between the markers in docs/on-policy.md, with the
figures in benchmarks/results/pong_pg_results.json and the PG-vs-PPO plot (env steps and
training minutes on the x axes) in docs/pong_pg/pg_vs_ppo.png. Runs made beside other work
(`--shared_machine`, remembered beside each run dir) have their times labelled "(shared)".
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any

from export_run import first_reaching
from pong_pg_study import (
    EVAL_GAMES,
    first_train_return_ge_0,
    log_file,
    publish,
    run_logged,
    shared_machine,
    stored_result,
    study_file,
)
from results_table import UNSEEN_SEED as EVAL_SEED
from solve_bench import REPO, OneLineParser, fail, md_row, parse_seeds

sys.path.insert(0, str(REPO))
from tfa_suite.run.reporting import elapsed_over_segments, read_metrics, total_seconds  # noqa: E402

PG_CONFIG = "experiments/configs/pong_pg.cfg"
PPO_CONFIG = "experiments/configs/pong_ppo.cfg"
EVAL_INTERVAL = 250_000
STICKY = 0.25
# name -> (export dir, sticky-action probability) of each 10-game score
SCORES = {
    "greedy": ("policy", 0.0),
    "sampled": ("policy_sampled", 0.0),
    "greedy_sticky": ("policy", STICKY),
    "sampled_sticky": ("policy_sampled", STICKY),
}
DOC = REPO / "docs" / "on-policy.md"
MARKERS = ("<!-- pong-pg-results:start -->", "<!-- pong-pg-results:end -->")
PLOT = REPO / "docs" / "pong_pg" / "pg_vs_ppo.png"
JSON_OUT = REPO / "benchmarks" / "results" / "pong_pg_results.json"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = OneLineParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=parse_seeds, default=[0, 1, 2], help="the PG runs' seeds")
    p.add_argument("--cap", type=int, default=3_000_000, help="a PG run's most env steps")
    p.add_argument("--target", type=float, default=18.0, help="the 10-game greedy mean to reach")
    p.add_argument(
        "--ppo_minutes",
        type=float,
        default=None,
        help="PPO's training budget (default: the median PG run's training minutes)",
    )
    p.add_argument("--no_ppo", action="store_true", help="train and report the PG runs only")
    p.add_argument("--out_dir", default="runs/pong_pg_results", help="where the runs train")
    p.add_argument("--results_dir", default="results", help="where export_run.py copies them")
    p.add_argument("--report_only", action="store_true", help="train nothing; report")
    p.add_argument(
        "--shared_machine", action="store_true", help="label the runs this call trains as shared"
    )
    args = p.parse_args(argv)
    if args.cap < EVAL_INTERVAL:
        fail(f"--cap must be >= {EVAL_INTERVAL:,} (one evaluation interval)")
    if not math.isfinite(args.target):
        fail("--target must be a number")
    if args.ppo_minutes is not None and not (
        math.isfinite(args.ppo_minutes) and args.ppo_minutes > 0
    ):
        fail("--ppo_minutes must be > 0")
    for name in ("out_dir", "results_dir"):
        path = Path(getattr(args, name))
        if path.exists() and not path.is_dir():
            fail(f"--{name} {path} is a file, not a directory")
    return args


def pg_dir(out: Path, seed: int) -> Path:
    return out / f"pg-seed{seed}"


def ppo_dir(out: Path) -> Path:
    return out / "ppo-seed0"


def score_file(root: Path, name: str) -> Path:
    return root / f"eval_{name}_{EVAL_GAMES}_games.json"


def complete(root: Path, steps: int | None = None, minutes: float | None = None) -> bool:
    """The run needs no more training, as train.py judges it: ended, and solved (a PG run
    stops at the target) or past `steps` env steps, or past `minutes` of training."""
    result = stored_result(root)
    if result is None:
        return False
    if steps is not None and (
        result["env_steps"] >= steps or result.get("solved_at_env_steps") is not None
    ):
        return True
    return minutes is not None and training_minutes(root) >= minutes


def scored(root: Path, name: str) -> bool:
    """The score file exists and is of the run's final export (not of an earlier end)."""
    path = score_file(root, name)
    if not path.is_file():
        return False
    result = stored_result(root)
    return result is not None and (
        json.loads(path.read_text()).get("policy_train_step") == result["train_steps"]
    )


def train(args: argparse.Namespace, root: Path, label: str, argv: list[str], **end: Any) -> None:
    """Trains (or resumes) the run in `root` to its end (`complete`'s `end`), then plays
    its four scores."""
    if not complete(root, **end):
        print(f"{label}: training in {root}", flush=True)
        root.parent.mkdir(parents=True, exist_ok=True)
        shared = args.shared_machine or shared_machine(root)
        study_file(root).write_text(json.dumps({"run": label, "shared_machine": shared}) + "\n")
        code = run_logged([sys.executable, "experiments/train.py", *argv], log_file(root), label)
        if code != 0 or not complete(root, **end):
            fail(f"{label} stopped (exit {code}); see {log_file(root)}, and rerun the same command "
                 "to resume it")  # fmt: skip
    for name, (export, sticky) in SCORES.items():
        if scored(root, name):
            continue
        print(f"{label}: {EVAL_GAMES} games, {name.replace('_', ', ')}", flush=True)
        argv = [
            sys.executable, "experiments/evaluate.py", f"--policy_dir={root / export}",
            f"--episodes={EVAL_GAMES}", f"--seed={EVAL_SEED}", f"--sticky_actions={sticky}",
            f"--json={score_file(root, name)}", "--overwrite",
        ]  # fmt: skip
        if run_logged(argv, log_file(root), label) != 0:
            fail(f"{label}: evaluate.py failed; see {log_file(root)}")


def training_minutes(root: Path) -> float:
    return total_seconds(read_metrics(str(root / "metrics.csv"))) / 60


def ppo_budget(args: argparse.Namespace, out: Path) -> float:
    if args.ppo_minutes is not None:
        return args.ppo_minutes
    return statistics.median(training_minutes(pg_dir(out, s)) for s in args.seeds)


def _evaluation(args: argparse.Namespace) -> list[str]:
    return [f"--eval_interval={EVAL_INTERVAL}", f"--eval_episodes={EVAL_GAMES}",
            f"--target_return={args.target:g}"]  # fmt: skip


def pg_argv(args: argparse.Namespace, out: Path, seed: int) -> list[str]:
    """train.py's flags for the PG run of `seed`: to the target or the cap."""
    return [
        f"--flagfile={PG_CONFIG}", f"--seed={seed}", f"--root_dir={pg_dir(out, seed)}",
        f"--num_env_steps={args.cap}", "--stop_at_threshold=true", *_evaluation(args),
    ]  # fmt: skip


def ppo_argv(args: argparse.Namespace, out: Path, minutes: float) -> list[str]:
    """train.py's flags for the PPO run: `minutes` of training, not stopped at the target."""
    return [
        f"--flagfile={PPO_CONFIG}", "--seed=0", f"--root_dir={ppo_dir(out)}",
        f"--max_train_minutes={minutes:.2f}", "--stop_at_threshold=false", *_evaluation(args),
    ]  # fmt: skip


def train_missing(args: argparse.Namespace, out: Path) -> None:
    for i, seed in enumerate(args.seeds, 1):
        label = f"[PG {i}/{len(args.seeds)}] seed {seed}"
        train(args, pg_dir(out, seed), label, pg_argv(args, out, seed), steps=args.cap)
    if args.no_ppo:
        return
    minutes = round(ppo_budget(args, out), 2)
    label = f"[PPO] seed 0, {minutes:.1f} min"
    train(args, ppo_dir(out), label, ppo_argv(args, out, minutes), minutes=minutes)


def export(args: argparse.Namespace, root: Path, name: str) -> None:
    """export_run.py's copy of the run into results/, with its four scores."""
    dest = Path(args.results_dir).resolve() / name
    argv = [
        sys.executable, "benchmarks/export_run.py", f"--root_dir={root}", f"--out={dest}",
        "--target=0", f"--target={args.target:g}",
    ]  # fmt: skip
    if run_logged(argv, log_file(root), name) != 0:
        fail(f"export_run.py failed for {root}; see {log_file(root)}")
    for score in SCORES:
        if score_file(root, score).is_file():
            shutil.copyfile(score_file(root, score), dest / score_file(root, score).name)


def run_figures(root: Path, name: str, target: float) -> dict[str, Any] | None:
    """What the report shows of one run, from its files; None if it has no metrics yet."""
    if not (root / "metrics.csv").is_file():
        return None
    rows = read_metrics(str(root / "metrics.csv"))
    timed = list(elapsed_over_segments(rows))
    if not timed:
        return None
    curve = [[int(r["env_steps"]), r["train_return"], round(s / 60, 2)] for r, s in timed
             if not math.isnan(r.get("train_return", math.nan))]  # fmt: skip
    evals = [[int(r["env_steps"]), r["eval_mean"], round(s / 60, 2)] for r, s in timed
             if not math.isnan(r.get("eval_mean", math.nan))]  # fmt: skip
    scores = {}
    for score in SCORES:
        if score_file(root, score).is_file():
            record = json.loads(score_file(root, score).read_text())
            scores[score] = {"mean": record["mean"], "std": record["std"]}
    run = json.loads((root / "config.json").read_text())["run"]
    return {
        "run": name,
        "ended": stored_result(root) is not None,
        # its configured end, as trained (the reporting call's flags may differ)
        "num_env_steps": int(run["num_env_steps"]),
        "max_train_minutes": float(run.get("max_train_minutes") or 0.0),
        "shared_machine": shared_machine(root),
        "env_steps": int(timed[-1][0]["env_steps"]),
        "training_minutes": round(timed[-1][1] / 60, 1),
        # steadier than the greedy evaluations, whose 10-game means swing by 10 points
        "train_break_even": first_train_return_ge_0(timed),
        "break_even": first_reaching(rows, 0.0),
        "target": first_reaching(rows, target),
        "scores": scores,
        "curve": curve,
        "evaluations": evals,
    }


def _reached(first: dict[str, Any] | None, shared: bool) -> str:
    if first is None:
        return "not reached"
    minutes = f"{first['training_wall_seconds'] / 60:.1f} min" + (" (shared)" if shared else "")
    return f"{first['env_steps']:,} ({minutes})"


def _score(r: dict[str, Any], name: str) -> str:
    s = r["scores"].get(name)
    return f"{s['mean']:+.1f} ± {s['std']:.1f}" if s else "–"


def columns(target: float) -> list[str]:
    return ["run", "env steps", "training time", "train return ≥ 0 at", "greedy ≥ 0 at",
            f"greedy ≥ {target:+g} at",
            "greedy", "sampled", "greedy, sticky", "sampled, sticky"]  # fmt: skip


def run_row(r: dict[str, Any]) -> str:
    shared = r["shared_machine"]
    steps = f"{r['env_steps']:,}" + ("" if r["ended"] else " (running or stopped)")
    time = f"{r['training_minutes']:.1f} min" + (" (shared)" if shared else "")
    cells = [r["run"], steps, time, _reached(r["train_break_even"], shared)]
    cells += [_reached(r["break_even"], shared)]
    cells += [_reached(r["target"], shared)] + [_score(r, name) for name in SCORES]
    return md_row(cells)


def _ends(runs: list[dict[str, Any]]) -> tuple[str, str]:
    """The PG runs' cap and PPO's budget as the runs were trained, from their configs."""
    pg = [r for r in runs if r["run"].startswith("PG")]
    caps = sorted({r["num_env_steps"] for r in pg})
    cap = " or ".join(f"{c:,}" for c in caps) if caps else "–"
    ppo = [r["max_train_minutes"] for r in runs if not r["run"].startswith("PG")]
    if not ppo:
        return cap, ""
    median = statistics.median(r["training_minutes"] for r in pg) if pg else math.nan
    budget = f"; PPO (pong_ppo.cfg, seed 0) for {ppo[0]:.1f} training minutes"
    if math.isclose(ppo[0], median, abs_tol=0.05):
        return cap, budget + ", the median PG run's"
    return cap, budget + f" (the PG runs' median is {median:.1f})"


def report_text(runs: list[dict[str, Any]], args: argparse.Namespace) -> str:
    cap, budget = _ends(runs)
    lines = [
        "Full runs (`python benchmarks/pong_pg_results.py`, `make results-pong-pg`): "
        f"pong_pg.cfg as shipped, seeds {', '.join(map(str, args.seeds))}, each to a greedy "
        f"{EVAL_GAMES}-game mean ≥ {args.target:+g} (evaluated every {EVAL_INTERVAL:,} env "
        f"steps) or {cap} env steps{budget}. Train return: the mean of the last 10 finished "
        'games of the sampled policy. The "greedy ... at" columns are the first in-run greedy '
        f'evaluation of {EVAL_GAMES} games at that mean; every "at" gives the training '
        "time until then. "
        f"Scores: {EVAL_GAMES} games of each final export (greedy `policy/`, sampled "
        f"`policy_sampled/`), without and with sticky actions ({STICKY}), game seeds from "
        f"{EVAL_SEED:,}. Curves and summaries: `{args.results_dir}/pong_pg-seed<S>`, "
        f"`{args.results_dir}/pong_ppo-seed0`.",
        "",
        md_row(columns(args.target)),
        md_row(["---"] * len(columns(args.target))),
        *(run_row(r) for r in runs),
        "",
        f"PG beside PPO: [{os.path.relpath(PLOT, REPO)}]({os.path.relpath(PLOT, DOC.parent)}).",
    ]
    return "\n".join(lines)


def plot(runs: list[dict[str, Any]], target: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 5), sharey=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, r in enumerate(runs):
        color = colors[i % len(colors)]
        shared = " (shared machine)" if r["shared_machine"] else ""  # its minutes are slower
        # x: env steps (in millions), or training minutes (the points' third figure)
        for ax, x, scale in ((axes[0], 0, 1e6), (axes[1], 2, 1.0)):
            ax.plot([p[x] / scale for p in r["curve"]], [p[1] for p in r["curve"]], "-",
                    color=color, label=f"{r['run']}{shared}: training return")  # fmt: skip
            evals = r["evaluations"]
            ax.plot([p[x] / scale for p in evals], [p[1] for p in evals], "o", color=color,
                    markersize=4, label=f"{r['run']}: greedy, {EVAL_GAMES} games")  # fmt: skip
    for ax in axes:
        ax.axhline(0, color="gray", linewidth=0.8)
        ax.axhline(target, color="gray", linewidth=0.8, linestyle="--")
    axes[0].set_xlabel("env steps (millions)")
    axes[1].set_xlabel("training wall time (minutes)")
    axes[0].set_ylabel("return (training: last 10 games)")
    axes[0].legend(fontsize=7)
    fig.suptitle("Pong from pixels on a 2-core CPU: REINFORCE (pong_pg.cfg) and PPO (pong_ppo.cfg)")
    PLOT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(PLOT, dpi=100, bbox_inches="tight")
    plt.close(fig)


def report(args: argparse.Namespace, out: Path) -> None:
    named = [(pg_dir(out, s), f"PG seed {s}", f"pong_pg-seed{s}") for s in args.seeds]
    if not args.no_ppo:
        named.append((ppo_dir(out), "PPO seed 0", "pong_ppo-seed0"))
    runs = []
    for root, name, export_name in named:
        figures = run_figures(root, name, args.target)
        if figures is None:
            continue
        runs.append(figures)
        export(args, root, export_name)
    if not runs:
        fail(f"no runs with metrics under {out}; run without --report_only first")
    heading = "## Pong: the shipped config on three seeds, and PPO"
    figures = {"target": args.target, "runs": runs}
    publish(JSON_OUT, figures, DOC, MARKERS, heading, report_text(runs, args))
    plot(runs, args.target)
    written = ", ".join(os.path.relpath(p, REPO) for p in (JSON_OUT, PLOT, DOC))
    print(f"\nwrote {written} and the runs under {args.results_dir}/")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    out = Path(args.out_dir).resolve()  # the runs' processes start in the repo root
    if not args.report_only:
        train_missing(args, out)
    report(args, out)


if __name__ == "__main__":
    main()
