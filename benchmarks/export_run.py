"""Copy a run's learning curve into results/, with a summary of what it measured.

    python benchmarks/export_run.py --root_dir=runs/pong_fast-seed0 --out=results/pong_fast-seed0

Works on a finished run or one still training (it reads only metrics.csv and
config.json, which are written row by row). Writes metrics.csv, learning_curve.png and
summary.json: env steps, training wall time summed over resumed segments, and every
evaluation with the best and the last, and with --target (or the run's own
--target_return) the first evaluation to reach it, with the training time until then
(--target may be given more than once, e.g. break-even and a goal: --target=0 --target=18);
for a finished run, also its result.json (the
final evaluation of the exported policy), and for a finance run the report that
experiments/finance_report.py wrote into it (table, JSON and net-worth plot).

A resumed segment is recognised by wall_seconds going down between rows, since each
process counts from its own start; the time after a segment's last row is not counted.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tfa_suite.envs.atari_eval import atari_game  # noqa: E402
from tfa_suite.run.reporting import (  # noqa: E402
    elapsed_over_segments,
    plot_learning_curve,
    read_metrics,
    total_seconds,
)


def _elapsed(rows: list[dict[str, float]]):  # noqa: ANN202
    """(row, training seconds up to it, summed over resumed segments): the library's."""
    return elapsed_over_segments(rows)


def wall_seconds(rows: list[dict[str, float]]) -> float:
    """The run's training seconds over every segment (total_wall_seconds where written)."""
    return total_seconds(rows)


def first_reaching(rows: list[dict[str, float]], target: float) -> dict | None:
    """The first evaluation with a mean >= target: its env steps and training seconds."""
    for row, seconds in _elapsed(rows):
        mean = row.get("eval_mean", math.nan)
        if not math.isnan(mean) and mean >= target:
            return {
                "target": target,
                "env_steps": int(row["env_steps"]),
                "eval_mean": mean,
                "training_wall_seconds": round(seconds, 1),
            }
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root_dir", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument(
        "--command",
        default=None,
        help="how the run was made (default: train.py with the run's own flags.txt)",
    )
    parser.add_argument(
        "--target",
        type=float,
        action="append",
        default=None,
        help="also record when an evaluation first reached this mean; may be repeated "
        "(default: the run's --target_return, if it set one)",
    )
    args = parser.parse_args()
    metrics = os.path.join(args.root_dir, "metrics.csv")
    if not os.path.isfile(metrics):
        sys.exit(f"error: {metrics} does not exist; --root_dir must be a tfa_suite run")
    with open(os.path.join(args.root_dir, "config.json")) as f:
        saved = json.load(f)
    # config.json holds sections (run, loop, agent); older runs saved one flat object.
    config = saved["run"] if isinstance(saved.get("run"), dict) else saved
    rows = read_metrics(metrics)
    evals = [
        {"env_steps": int(r["env_steps"]), "mean": r["eval_mean"], "std": r["eval_std"]}
        for r in rows
        if not math.isnan(r["eval_mean"])
    ]
    os.makedirs(args.out, exist_ok=True)
    shutil.copyfile(metrics, os.path.join(args.out, "metrics.csv"))
    finished = os.path.join(args.root_dir, "result.json")
    if os.path.isfile(finished):  # a finished run: its final evaluation of the export
        shutil.copyfile(finished, os.path.join(args.out, "result.json"))
    if config["env"] == "finance":  # the baseline report, when finance_report.py has run
        from tfa_suite.finance.report import REPORT_FILES

        for name in REPORT_FILES:
            if os.path.isfile(os.path.join(args.root_dir, name)):
                shutil.copyfile(os.path.join(args.root_dir, name), os.path.join(args.out, name))
    targets, saved_target = args.target or [], config.get("target_return")
    if not targets and isinstance(saved_target, (int, float)) and math.isfinite(saved_target):
        targets = [saved_target]
    title = f"{config['env']} {config['agent']} seed {config['seed']}"
    plot_learning_curve(metrics, os.path.join(args.out, "learning_curve.png"), title, None)
    summary = {
        "command": args.command
        or f"python experiments/train.py --flagfile={args.root_dir}/flags.txt",
        "exported_with": f"benchmarks/export_run.py --root_dir={args.root_dir} --out={args.out}"
        + "".join(f" --target={t:g}" for t in args.target or []),
        "env": config["env"],
        "agent": config["agent"],
        "seed": config["seed"],
        "env_steps": int(rows[-1]["env_steps"]) if rows else 0,
        # Atari: each env step is 4 emulator frames (frame skip).
        **(
            {"frames": 4 * int(rows[-1]["env_steps"]) if rows else 0}
            if atari_game(config["env"]) is not None
            else {}
        ),
        "train_steps": int(rows[-1]["train_steps"]) if rows else 0,
        "training_wall_seconds": round(wall_seconds(rows), 1),
        "evaluations": evals,
        "best_eval": max(evals, key=lambda e: e["mean"]) if evals else None,
        "last_eval": evals[-1] if evals else None,
        # The highest target's; with several, each one's too.
        **({"first_reached": first_reaching(rows, max(targets))} if targets else {}),
        **(
            {"first_reached_by_target": {f"{t:g}": first_reaching(rows, t) for t in targets}}
            if len(targets) > 1
            else {}
        ),
    }
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(json.dumps({k: v for k, v in summary.items() if k != "evaluations"}, indent=2))


if __name__ == "__main__":
    main()
