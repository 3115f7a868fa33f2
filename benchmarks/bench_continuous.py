"""Pendulum-v1 wall seconds to solve: tfa_suite's TD3, SAC and DDPG vs Stable-Baselines3's.

    make bench-continuous                  # 3 seeds x 6 systems, one process at a time
    make bench-continuous ARGS=--quick     # 1 seed each
    python benchmarks/bench_continuous.py --smoke --systems=tfa_sac,sb3_sac  # ~1 min
    python benchmarks/bench_continuous.py --systems=tfa_td3,sb3_td3 --seeds=0,1

"Solved" is the greedy policy's mean return over 10 evaluation episodes (fresh gymnasium
Pendulum-v1 envs, seeds seed + EVAL_SEED_OFFSET + i) >= -200, checked every 1000 env
steps (the --eval_* and --target_return lines of experiments/configs/pendulum_<algo>.cfg,
passed to SB3 too). Every system x seed is a fresh subprocess, one at a time. Writes
benchmarks/results/pendulum.json and the table in docs/benchmarks.md (--out and --doc
elsewhere; --smoke writes to the temp dir unless they are given).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench_common import (
    DOC,
    REPO,
    eval_seed_offset,
    exit_if_failed,
    machine_info,
    machine_sentence,
    read_cfg,
    run_all,
    run_one,
    runs_table,
    shown,
    summarize,
    summary_table,
    write_doc,
)

ALGOS = ("td3", "sac", "ddpg")
CFGS = {algo: REPO / "experiments" / "configs" / f"pendulum_{algo}.cfg" for algo in ALGOS}
RESULTS = REPO / "benchmarks" / "results" / "pendulum.json"
START, END = "<!-- pendulum-bench:start -->", "<!-- pendulum-bench:end -->"
HEADING = "## Pendulum-v1: TD3, SAC and DDPG vs Stable-Baselines3"
# The zoo's network sizes: tfa_suite's configs use (64, 64). The `_zoonet` systems run
# tfa_suite's config with the zoo's networks instead, to show how much of the gap the
# network size makes.
ZOO_LAYERS = {"td3": "400,300", "sac": "256,256", "ddpg": "400,300"}
SYSTEMS: dict[str, str] = {}
for _algo in ALGOS:
    SYSTEMS[f"tfa_{_algo}"] = f"tfa_suite {_algo.upper()}, pendulum_{_algo}.cfg"
    if _algo in ("td3", "sac"):
        SYSTEMS[f"tfa_{_algo}_zoonet"] = (
            f"tfa_suite {_algo.upper()}, pendulum_{_algo}.cfg with the zoo's "
            f"({ZOO_LAYERS[_algo].replace(',', ', ')}) networks"
        )
    SYSTEMS[f"sb3_{_algo}"] = f"Stable-Baselines3 {_algo.upper()}, RL-Zoo hyperparameters"
GOAL_RATIO = {"td3": 2.0, "sac": 2.0}  # SB3 ÷ tfa_suite median s to solve, per the issue
EVAL_KEYS = ("eval_interval", "eval_episodes", "target_return")
SMOKE_ENV_STEPS = 2000
PACKAGES = ("tensorflow", "tf-agents", "torch", "stable-baselines3", "gymnasium", "numpy")
MEASURED = (
    "**s to solve** (headline): harness clock from just before `Popen` to process exit, minus "
    "the process's own post-solve tail (`wall_seconds - solved_at_seconds` in its result JSON: "
    "tfa_suite's last checkpoint, policy export, reload, re-score and plot; SB3: nothing). "
    "Interpreter start, imports, tracing/compilation, the initial random collection and every "
    "evaluation are inside. **process s**: `Popen` to exit, everything. **env steps** / "
    "**grad steps**: at the solving evaluation. **env steps/s**: env steps / s to solve. "
    "**SB3 ÷ this**: SB3's median s to solve for the same algorithm over tfa_suite's (the "
    "goal is >= 2 for TD3 and SAC). **CPU stall %**: share of the run's time in which some "
    "runnable task waited for a CPU (Linux PSI, the run's own threads included); high values "
    "mean a contended machine. An unsolved run counts as infinitely slow in the s-to-solve "
    "median; the other medians are over solved runs. tfa_suite runs `experiments/train.py "
    "--flagfile=experiments/configs/pendulum_<algo>.cfg --seed=S --root_dir=<fresh tmp dir> "
    "--video_episodes=0`: the compiled TF Pendulum, evaluated in the graph and confirmed on "
    "gymnasium (only the gymnasium evaluation can solve a run), for at most the config's "
    "`--num_env_steps` (2e4 SAC, 3e4 TD3 and DDPG). SB3 runs `benchmarks/sb3_continuous.py "
    "--algo=<algo>` with RL-Zoo's Pendulum-v1 hyperparameters (its 2e4 steps, continued to "
    "6e4 if unsolved), with TensorFlow (in this venv only for tfa_suite) kept out of its "
    "process and torch on `--sb3_torch_threads` threads (1 by default). Both take one env "
    "step and one gradient step per iteration with the zoo's learning rates, batch, tau, "
    "discount and TD3/DDPG noise. tfa_suite's configs differ in two ways (see their "
    "comments): (64, 64) networks where the zoo's are (400, 300) for TD3 and DDPG and "
    "(256, 256) for SAC, and 1,000 random steps first for TD3 and DDPG where the zoo's take "
    "10,000. The `_zoonet` rows run tfa_suite's configs with the zoo's networks, which "
    "separates the network size from the rest."
)


@dataclasses.dataclass(frozen=True)
class Setup:
    eval_cfg: dict[str, str]  # EVAL_KEYS, the same in every pendulum_<algo>.cfg
    eval_seed_offset: int
    sb3_torch_threads: int
    timeout: float
    max_env_steps: int  # 0: each script's own budget


def eval_settings() -> dict[str, str]:
    """The evaluation lines of the configs, which must agree so both sides use one goal."""
    settings = {algo: {k: read_cfg(CFGS[algo])[k] for k in EVAL_KEYS} for algo in ALGOS}
    if any(s != settings[ALGOS[0]] for s in settings.values()):
        raise SystemExit(f"the pendulum configs disagree on {EVAL_KEYS}: {settings}")
    return settings[ALGOS[0]]


def command(system: str, seed: int, out_dir: Path, setup: Setup) -> tuple[list[str], Path]:
    """The subprocess argv for one run and the result JSON it writes."""
    side, algo, *variant = system.split("_")
    cap = setup.max_env_steps
    if side == "sb3":
        return [
            sys.executable, "benchmarks/sb3_continuous.py", f"--algo={algo}", f"--seed={seed}",
            f"--eval_interval={setup.eval_cfg['eval_interval']}",
            f"--eval_episodes={setup.eval_cfg['eval_episodes']}",
            f"--eval_seed_offset={setup.eval_seed_offset}",
            f"--target={setup.eval_cfg['target_return']}",
            f"--torch_threads={setup.sb3_torch_threads}", f"--out={out_dir / 'result.json'}",
            *([f"--max_env_steps={cap}"] if cap else []),
        ], out_dir / "result.json"  # fmt: skip
    return [
        sys.executable, "experiments/train.py", f"--flagfile={CFGS[algo].relative_to(REPO)}",
        f"--seed={seed}", f"--root_dir={out_dir / 'run'}", "--video_episodes=0",
        *([f"--num_env_steps={cap}"] if cap else []),
        *([f"--actor_layers={ZOO_LAYERS[algo]}", f"--critic_layers={ZOO_LAYERS[algo]}"]
          if variant == ["zoonet"] else []),
    ], out_dir / "run" / "result.json"  # fmt: skip


def peer_ratios(summary: dict[str, Any]) -> dict[str, float]:
    """Per algorithm, SB3's median seconds to solve over tfa_suite's (> 1: tfa_suite faster)."""
    ratios = {}
    for system in summary:
        if not system.startswith("tfa_"):
            continue
        algo = system.split("_")[1]
        peer = summary.get(f"sb3_{algo}", {}).get("median_to_solve_seconds")
        base = summary[system].get("median_to_solve_seconds")
        if peer is not None and base:
            ratios[f"sb3_over_{system}"] = summary[system]["peer_over_this"] = peer / base
    return ratios


def ratio_sentence(report: dict[str, Any]) -> str:
    parts = []
    for algo in ALGOS:
        if f"tfa_{algo}" not in report["summary"] or f"sb3_{algo}" not in report["summary"]:
            continue
        ratio = report["ratios"].get(f"sb3_over_tfa_{algo}")
        text = f"{algo.upper()} " + (f"{ratio:.1f}x" if ratio else "–")
        if goal := GOAL_RATIO.get(algo):
            verdict = "" if ratio is None else (": met" if ratio >= goal else ": not met")
            text += f" (goal >= {goal:g}{verdict})"
        parts.append(text)
    if not parts:
        return ""
    return "SB3 ÷ tfa_suite, median s to solve: " + ", ".join(parts) + "."


def table(report: dict[str, Any]) -> str:
    budget = report["max_env_steps"]
    lines = [
        f"Command: `make bench-continuous` ({report['mode']}; seeds {report['seeds']}; SB3 "
        f"torch threads {report['sb3_torch_threads'] or 'default'}"
        + (f"; env-step budget {budget:,}" if budget else "")
        + f"). {machine_sentence(report)}",
        "",
        f"Goal: greedy mean return over {report['eval_episodes']} evaluation episodes on "
        f"gymnasium Pendulum-v1 >= {report['target_return']:g}, checked every "
        f"{report['eval_interval']} env steps. Medians over seeds:",
        "",
        *summary_table(report["summary"]),
    ]
    if sentence := ratio_sentence(report):
        lines += ["", sentence]
    lines += ["", *runs_table(report["runs"])]
    return "\n".join([*lines, "", "What is measured: " + MEASURED])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help=", ".join(SYSTEMS))
    parser.add_argument("--quick", action="store_true", help="one seed (the first)")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help=f"--quick with a {SMOKE_ENV_STEPS:,}-step budget, writing to the temp dir "
        "unless --out/--doc are given (unsolved runs are expected)",
    )
    parser.add_argument(
        "--max_env_steps",
        type=int,
        default=0,
        help="env-step budget of every run: tfa_suite's --num_env_steps, SB3's "
        "--max_env_steps (0: each script's own)",
    )
    parser.add_argument("--out", type=Path, default=None, help=f"JSON (default {shown(RESULTS)})")
    parser.add_argument("--doc", type=Path, default=None, help=f"markdown (default {shown(DOC)})")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per run")
    parser.add_argument("--sb3_torch_threads", type=int, default=1, help="0: torch's default")
    args = parser.parse_args()
    one_seed = args.quick or args.smoke
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()][: 1 if one_seed else None]
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    if unknown := sorted(set(systems) - set(SYSTEMS)):
        parser.error(f"unknown systems {unknown}; choose from {', '.join(SYSTEMS)}")
    max_env_steps = args.max_env_steps or (SMOKE_ENV_STEPS if args.smoke else 0)
    tmp = Path(tempfile.gettempdir())
    out = args.out or (tmp / "pendulum-bench-smoke.json" if args.smoke else RESULTS)
    doc = args.doc or (tmp / "pendulum-bench-smoke.md" if args.smoke else DOC)
    eval_cfg = eval_settings()
    setup = Setup(eval_cfg, eval_seed_offset(), args.sb3_torch_threads, args.timeout, max_env_steps)

    def run(system: str, seed: int) -> dict[str, Any]:
        return run_one(system, seed, lambda d: command(system, seed, d, setup), setup.timeout)

    runs, load_before = run_all(systems, seeds, run)
    summary = summarize(runs, systems, SYSTEMS)
    if args.smoke:
        mode = "smoke test, 1 seed"
    elif args.quick:
        mode = "quick, 1 seed"
    else:
        mode = "full"
    report: dict[str, Any] = {
        "benchmark": "Pendulum-v1 process wall seconds until greedy mean return >= "
        f"{float(eval_cfg['target_return']):g}",
        "mode": mode,
        "seeds": seeds,
        "eval_interval": int(eval_cfg["eval_interval"]),
        "eval_episodes": int(eval_cfg["eval_episodes"]),
        "target_return": float(eval_cfg["target_return"]),
        "max_env_steps": max_env_steps or None,
        "sb3_torch_threads": args.sb3_torch_threads,
        "finished": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average": {"before": load_before, "after": os.getloadavg()[0]},
        "machine": machine_info(PACKAGES),
        "measured": MEASURED,
        "goal_ratios": GOAL_RATIO,
        "ratios": peer_ratios(summary),
        "summary": summary,
        "runs": runs,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    write_doc(doc, START, END, markdown := table(report), heading=HEADING)
    print(f"\nwrote {shown(out)} and {shown(doc)}\n\n{markdown}")
    exit_if_failed(runs)


if __name__ == "__main__":
    main()
