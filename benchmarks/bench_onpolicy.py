"""CartPole-v1 wall seconds to solve: tfa_suite PPO vs Stable-Baselines3 PPO.

    make bench-onpolicy                    # 3 seeds x 2 systems, one process at a time
    make bench-onpolicy ARGS=--quick       # 1 seed each: a smoke test
    python benchmarks/bench_onpolicy.py --systems=sb3_ppo --seeds=0,1

"Solved" is the greedy policy's mean return over 10 evaluation episodes (fresh gymnasium
CartPole-v1 envs, seeds seed + EVAL_SEED_OFFSET + i) >= 475, checked every --eval_interval
env steps of experiments/configs/cartpole_ppo.cfg (its --eval_* lines, and its
--target_return if it has one, are passed to SB3 too). Every system x seed is a fresh
subprocess, one at a time. Beside the process wall seconds to solve it reports each run's
own clock at the solving evaluation and, where the run prints it, its tracing time.
Writes benchmarks/results/onpolicy.json and the section in docs/benchmarks.md (--out and
--doc elsewhere).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench_common import (
    DOC,
    REPO,
    eval_seed_offset,
    exit_if_failed,
    fmt,
    machine_info,
    machine_sentence,
    md_row,
    median,
    read_cfg,
    run_all,
    run_one,
    runs_table,
    shown,
    summarize,
    summary_table,
    write_doc,
)

CFG = REPO / "experiments" / "configs" / "cartpole_ppo.cfg"
RESULTS = REPO / "benchmarks" / "results" / "onpolicy.json"
START, END = "<!-- onpolicy-bench:start -->", "<!-- onpolicy-bench:end -->"
HEADING = "## CartPole-v1: PPO vs Stable-Baselines3"
PEER, BASELINE = "sb3_ppo", "tfa_ppo"
SYSTEMS = {
    BASELINE: "tfa_suite PPO, in-graph TF CartPole (default backend)",
    PEER: "Stable-Baselines3 PPO, RL-Zoo hyperparameters",
}
GOAL_RATIO = 1.5  # SB3 ÷ tfa_suite, median s to solve
CARTPOLE_THRESHOLD = 475.0  # CartPole-v1's registered reward_threshold, tfa_suite's default
# Where a run reports its tracing time: a result.json field, else stdout lines such as
# "[    1s] traced the rollout loop in 2.3 s" (every such line is summed).
TRACE_FIELDS = ("trace_seconds", "tracing_seconds", "compile_seconds")
TRACE_LINE = re.compile(r"\btraced\b.*?\bin\s+(\d+(?:\.\d+)?)\s*s(?:ec(?:ond)?s?)?\b", re.I)
PACKAGES = ("tensorflow", "tf-agents", "torch", "stable-baselines3", "gymnasium", "numpy")
MEASURED = (
    "**s to solve** (headline): harness clock from just before `Popen` to process exit, minus "
    "the process's own post-solve tail (`wall_seconds - solved_at_seconds` in its result JSON: "
    "tfa_suite's last checkpoint, policy export, reload, re-score and plot; SB3: nothing). "
    "Interpreter start, imports, tracing and every evaluation are inside. **process s**: "
    "`Popen` to exit, everything. **env steps** / **grad steps**: at the solving evaluation, "
    "env steps summed over the parallel envs, grad steps counted as minibatch updates. "
    "**env steps/s**: env steps / s to solve. **in-run s**: the process's own clock at the "
    "solving evaluation, from the end of its imports: tfa_suite's `solved_at_seconds` "
    "(`train()`'s clock; flag parsing and tracing inside), SB3's `solved_at_seconds - "
    "import_seconds`. **start-up s**: s to solve - in-run s (interpreter start and imports, "
    "and for tfa_suite flag parsing and config). **trace s**: tfa_suite's tracing time as "
    "the run reports it (`traced ... in X s` lines on its stdout, summed; – when it prints "
    "none). **CPU stall %**: share of the run's time in which some runnable task waited for "
    "a CPU (Linux PSI, the run's own threads included); high values mean a contended "
    "machine. An unsolved run counts as infinitely slow in the s-to-solve median; the other "
    "medians are over solved runs. tfa_suite runs `experiments/train.py "
    "--flagfile=experiments/configs/cartpole_ppo.cfg --seed=S --root_dir=<fresh tmp dir> "
    "--video_episodes=0`; SB3 runs `benchmarks/sb3_ppo_cartpole.py` (RL-Zoo's PPO "
    "hyperparameters: 8 envs, n_steps 32, batch 256, 20 epochs, GAE lambda 0.8, gamma 0.98, "
    "learning rate and clip range linear from 1e-3 and 0.2 to 0 over its 1e5 steps, which "
    "is also its longest run), with TensorFlow (in this venv only for tfa_suite) kept out of "
    "its process and torch on `--sb3_torch_threads` threads (1 by default)."
)


@dataclasses.dataclass(frozen=True)
class Setup:
    cfg: Path
    eval_interval: int
    eval_episodes: int
    target_return: float
    eval_seed_offset: int
    sb3_torch_threads: int
    timeout: float
    max_env_steps: int  # 0: each side's own budget


def eval_settings(cfg_path: Path) -> tuple[int, int, float]:
    """The config's eval interval, episodes and target, which SB3 gets too."""
    if not cfg_path.is_file():
        raise SystemExit(f"error: {shown(cfg_path)} not found (the tfa_suite PPO config)")
    cfg = read_cfg(cfg_path)
    if missing := [k for k in ("eval_interval", "eval_episodes") if k not in cfg]:
        raise SystemExit(f"error: {shown(cfg_path)} has no {', '.join(f'--{k}' for k in missing)}")
    target = float(cfg.get("target_return", CARTPOLE_THRESHOLD))
    return int(cfg["eval_interval"]), int(cfg["eval_episodes"]), target


def trace_seconds(log: str, result: dict[str, Any]) -> float | None:
    """The run's tracing time: a result.json field if it has one, else the sum of its
    `traced ... in X s` stdout lines; None when it reports neither."""
    for key in TRACE_FIELDS:
        if isinstance(result.get(key), int | float):
            return float(result[key])
    found = [float(m.group(1)) for line in log.splitlines() if (m := TRACE_LINE.search(line))]
    return sum(found) if found else None


def in_run_fields(system: str, log: str, result: dict[str, Any]) -> dict[str, Any]:
    """The row's in-run figures, from the run's stdout and result JSON."""
    solved_at = result.get("solved_at_seconds") if result.get("solved") else None
    if solved_at is not None and system == PEER:
        solved_at -= result.get("import_seconds", 0.0)  # SB3's clock starts before its imports
    return {
        "in_run_to_solve_seconds": solved_at,
        "trace_seconds": trace_seconds(log, result) if system != PEER else None,
        "trace_lines": [ln.strip() for ln in log.splitlines() if TRACE_LINE.search(ln)],
    }


def command(system: str, seed: int, out_dir: Path, setup: Setup) -> tuple[list[str], Path]:
    """The subprocess argv for one run and the result JSON it writes."""
    cap = setup.max_env_steps
    if system == PEER:
        return [
            sys.executable, "benchmarks/sb3_ppo_cartpole.py", f"--seed={seed}",
            f"--eval_interval={setup.eval_interval}", f"--eval_episodes={setup.eval_episodes}",
            f"--eval_seed_offset={setup.eval_seed_offset}", f"--target={setup.target_return}",
            f"--torch_threads={setup.sb3_torch_threads}", f"--out={out_dir / 'result.json'}",
            *([f"--max_env_steps={cap}"] if cap else []),
        ], out_dir / "result.json"  # fmt: skip
    return [
        sys.executable, "experiments/train.py", f"--flagfile={shown(setup.cfg)}",
        f"--seed={seed}", f"--root_dir={out_dir / 'run'}", "--video_episodes=0",
        *([f"--num_env_steps={cap}"] if cap else []),
    ], out_dir / "run" / "result.json"  # fmt: skip


def run_system(system: str, seed: int, setup: Setup) -> dict[str, Any]:
    row = run_one(
        system,
        seed,
        lambda d: command(system, seed, d, setup),
        setup.timeout,
        extra=lambda log, result: in_run_fields(system, log, result),
    )
    to_solve, in_run = row["to_solve_seconds"], row["in_run_to_solve_seconds"]
    row["startup_seconds"] = None if to_solve is None or in_run is None else to_solve - in_run
    return row


def add_in_run_medians(summary: dict[str, Any], runs: list[dict[str, Any]]) -> None:
    for system, entry in summary.items():
        solved = [r for r in runs if r["system"] == system and r["solved"]]
        for key in ("in_run_to_solve_seconds", "startup_seconds", "trace_seconds"):
            entry[f"median_{key}"] = median([r[key] for r in solved])


def peer_ratios(summary: dict[str, Any]) -> dict[str, float]:
    """SB3's medians over tfa_suite's (> 1: tfa_suite faster): s to solve, and in-run s."""
    ratios: dict[str, float] = {}
    peer, base = summary.get(PEER, {}), summary.get(BASELINE, {})
    for key, name in (("to_solve_seconds", ""), ("in_run_to_solve_seconds", "in_run_")):
        top, bottom = peer.get(f"median_{key}"), base.get(f"median_{key}")
        if top is not None and bottom:
            ratios[f"{name}{PEER}_over_{BASELINE}"] = top / bottom
    if ratio := ratios.get(f"{PEER}_over_{BASELINE}"):
        base["peer_over_this"] = ratio
    return ratios


def ratio_sentence(report: dict[str, Any]) -> str:
    ratios = report["ratios"]
    if (ratio := ratios.get(f"{PEER}_over_{BASELINE}")) is None:
        return ""
    verdict = "met" if ratio >= GOAL_RATIO else "not met"
    text = f"SB3 ÷ tfa_suite, median s to solve: {ratio:.1f}x (goal >= {GOAL_RATIO:g}: {verdict})"
    if (in_run := ratios.get(f"in_run_{PEER}_over_{BASELINE}")) is not None:
        text += f"; median in-run s: {in_run:.1f}x"
    return text + "."


def in_run_table(report: dict[str, Any]) -> list[str]:
    """Per system the medians, then per run: s to solve split into start-up and in-run."""
    lines = [md_row(["system", "seed", "s to solve", "start-up s", "in-run s", "trace s"])]
    lines.append(md_row(["---", "---"] + ["---:"] * 4))
    for row in report["summary"].values():
        lines.append(md_row([
            row["label"], "median", fmt(row["median_to_solve_seconds"], ".1f"),
            fmt(row["median_startup_seconds"], ".1f"),
            fmt(row["median_in_run_to_solve_seconds"], ".1f"),
            fmt(row["median_trace_seconds"], ".1f"),
        ]))  # fmt: skip
    for r in report["runs"]:
        lines.append(md_row([
            r["system"], r["seed"], fmt(r["to_solve_seconds"], ".1f"),
            fmt(r["startup_seconds"], ".1f"), fmt(r["in_run_to_solve_seconds"], ".1f"),
            fmt(r["trace_seconds"], ".1f"),
        ]))  # fmt: skip
    return lines


def table(report: dict[str, Any]) -> str:
    budget = report["max_env_steps"]
    lines = [
        f"Command: `make bench-onpolicy` ({report['mode']}; seeds {report['seeds']}; SB3 "
        f"torch threads {report['sb3_torch_threads'] or 'default'}"
        + (f"; env-step budget {budget:,}" if budget else "")
        + f"; `--flagfile={report['cfg']}`). {machine_sentence(report)}",
        "",
        f"Goal: greedy mean return over {report['eval_episodes']} evaluation episodes on "
        f"gymnasium CartPole-v1 >= {report['target_return']:g}, checked every "
        f"{report['eval_interval']} env steps. Medians over seeds:",
        "",
        *summary_table(report["summary"]),
    ]
    if sentence := ratio_sentence(report):
        lines += ["", sentence]
    lines += ["", "Where the seconds to solve go:", "", *in_run_table(report)]
    lines += ["", *runs_table(report["runs"])]
    return "\n".join([*lines, "", "What is measured: " + MEASURED])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help=", ".join(SYSTEMS))
    parser.add_argument("--quick", action="store_true", help="one seed (the first): a smoke test")
    parser.add_argument("--cfg", type=Path, default=CFG, help="tfa_suite's flagfile")
    parser.add_argument(
        "--max_env_steps",
        type=int,
        default=0,
        help="env-step budget of every run: tfa_suite's --num_env_steps, SB3's "
        "--max_env_steps (0: each side's own)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"JSON ({shown(RESULTS)})")
    parser.add_argument("--doc", type=Path, default=DOC, help=f"markdown ({shown(DOC)})")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per run")
    parser.add_argument("--sb3_torch_threads", type=int, default=1, help="0: torch's default")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()][: 1 if args.quick else None]
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    if unknown := sorted(set(systems) - set(SYSTEMS)):
        parser.error(f"unknown systems {unknown}; choose from {', '.join(SYSTEMS)}")
    cfg = args.cfg.resolve()
    eval_interval, eval_episodes, target = eval_settings(cfg)
    setup = Setup(
        cfg, eval_interval, eval_episodes, target, eval_seed_offset(), args.sb3_torch_threads,
        args.timeout, args.max_env_steps,
    )  # fmt: skip

    runs, load_before = run_all(systems, seeds, lambda s, seed: run_system(s, seed, setup))
    summary = summarize(runs, systems, SYSTEMS)
    add_in_run_medians(summary, runs)
    report: dict[str, Any] = {
        "benchmark": f"CartPole-v1 PPO process wall seconds until greedy mean return >= {target:g}",
        "mode": "quick smoke test, 1 seed" if args.quick else "full",
        "seeds": seeds,
        "cfg": shown(cfg),
        "eval_interval": eval_interval,
        "eval_episodes": eval_episodes,
        "target_return": target,
        "max_env_steps": args.max_env_steps or None,
        "sb3_torch_threads": args.sb3_torch_threads,
        "finished": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average": {"before": load_before, "after": os.getloadavg()[0]},
        "machine": machine_info(PACKAGES),
        "measured": MEASURED,
        "goal_ratio": GOAL_RATIO,
        "ratios": peer_ratios(summary),
        "summary": summary,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    write_doc(args.doc, START, END, markdown := table(report), heading=HEADING)
    print(f"\nwrote {shown(args.out.resolve())} and {shown(args.doc.resolve())}\n\n{markdown}")
    exit_if_failed(runs)


if __name__ == "__main__":
    main()
