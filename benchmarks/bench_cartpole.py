"""CartPole-v1 wall seconds to solve: tfa_suite (two env backends) vs Stable-Baselines3 DQN.

    make bench                     # 3 seeds x 3 systems, ~10 min on 2 idle cores
    make bench ARGS=--quick        # 1 seed each: a smoke test
    python benchmarks/bench_cartpole.py --systems=tfa_graph,sb3 --seeds=0,1

"Solved" is the greedy policy's mean return over 10 evaluation episodes (fresh gymnasium
CartPole-v1 envs, seeds seed + EVAL_SEED_OFFSET + i) >= 475, checked every --eval_interval
env steps of experiments/configs/cartpole.cfg. Every system x seed is a fresh subprocess,
one at a time. Writes benchmarks/results/cartpole.json and the table in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
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

CFG = REPO / "experiments" / "configs" / "cartpole.cfg"
RESULTS = REPO / "benchmarks" / "results" / "cartpole.json"
START, END = "<!-- cartpole-bench:start -->", "<!-- cartpole-bench:end -->"
PEER, BASELINES = "sb3", ("tfa_graph", "tfa_python")
SYSTEMS = {
    "tfa_graph": "tfa_suite, in-graph TF CartPole (default backend)",
    "tfa_python": "tfa_suite, gymnasium env (--backend=python)",
    "sb3": "Stable-Baselines3 DQN, RL-Zoo hyperparameters",
}
PACKAGES = ("tensorflow", "tf-agents", "torch", "stable-baselines3", "gymnasium", "numpy")
MEASURED = (
    "**s to solve** (headline): harness clock from just before `Popen` to process exit, minus "
    "the process's own post-solve tail (`wall_seconds - solved_at_seconds` in its result JSON: "
    "tfa_suite's last checkpoint, policy export, reload, re-score and plot; SB3: nothing). "
    "Interpreter start, imports, tracing/compilation, the initial random collection and every "
    "evaluation are inside. **process s**: `Popen` to exit, everything. **env steps** / "
    "**grad steps**: at the solving evaluation (tfa_suite's env steps are summed over its "
    "`--num_envs` parallel envs). **env steps/s**: env steps / s to solve. **CPU stall %**: "
    "share of the run's time in which some runnable task waited for a CPU (Linux PSI, the "
    "run's own threads included); high values mean a contended machine. An unsolved run "
    "counts as infinitely slow in the s-to-solve median; the other medians are over solved "
    "runs. tfa_suite runs `experiments/train.py --flagfile=experiments/configs/cartpole.cfg "
    "--seed=S --root_dir=<fresh tmp dir> --video_episodes=0` (add `--backend=python`); SB3 "
    "runs `benchmarks/sb3_cartpole.py` (RL-Zoo's 5e4 steps, continued to 1.5e5 if unsolved), "
    "with TensorFlow (in this venv only for tfa_suite) kept out of its process and torch on "
    "`--sb3_torch_threads` threads: 1 by default, as fast as 2 on two idle cores, while 2 "
    "threads slow down 3-25x whenever another process competes for a core."
)


@dataclasses.dataclass(frozen=True)
class Setup:
    cfg: dict[str, str]  # the `--name=value` lines of experiments/configs/cartpole.cfg
    eval_seed_offset: int
    sb3_torch_threads: int
    timeout: float


def command(system: str, seed: int, out_dir: Path, setup: Setup) -> tuple[list[str], Path]:
    """The subprocess argv for one run and the result JSON it writes."""
    if system == PEER:
        return [
            sys.executable, "benchmarks/sb3_cartpole.py", f"--seed={seed}",
            f"--eval_interval={setup.cfg['eval_interval']}",
            f"--eval_episodes={setup.cfg['eval_episodes']}",
            f"--eval_seed_offset={setup.eval_seed_offset}", f"--out={out_dir / 'result.json'}",
            f"--torch_threads={setup.sb3_torch_threads}",
        ], out_dir / "result.json"  # fmt: skip
    argv = [
        sys.executable, "experiments/train.py", f"--flagfile={CFG.relative_to(REPO)}",
        f"--seed={seed}", f"--root_dir={out_dir / 'run'}", "--video_episodes=0",
    ]  # fmt: skip
    backend = ["--backend=python"] if system == "tfa_python" else []
    return argv + backend, out_dir / "run" / "result.json"


def peer_ratios(summary: dict[str, Any]) -> dict[str, float]:
    """SB3's median seconds to solve over each tfa_suite system's (> 1: tfa_suite faster)."""
    peer = summary.get(PEER, {}).get("median_to_solve_seconds")
    ratios = {}
    for system in BASELINES:
        base = summary.get(system, {}).get("median_to_solve_seconds")
        if peer is not None and base:
            ratios[f"{PEER}_over_{system}"] = summary[system]["peer_over_this"] = peer / base
    return ratios


def table(report: dict[str, Any]) -> str:
    lines = [
        f"Command: `make bench` ({report['mode']}; seeds {report['seeds']}; SB3 torch threads "
        f"{report['sb3_torch_threads'] or 'default'}). {machine_sentence(report)}",
        "",
        f"Goal: greedy mean return over {report['eval_episodes']} evaluation episodes on "
        f"gymnasium CartPole-v1 >= 475, checked every {report['eval_interval']} env steps. "
        "Medians over seeds:",
        "",
        *summary_table(report["summary"]),
        "",
        *runs_table(report["runs"]),
    ]
    return "\n".join([*lines, "", "What is measured: " + MEASURED])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help=", ".join(SYSTEMS))
    parser.add_argument("--quick", action="store_true", help="one seed (the first): a smoke test")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per run")
    parser.add_argument("--sb3_torch_threads", type=int, default=1, help="0: torch's default")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()][: 1 if args.quick else None]
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    if unknown := sorted(set(systems) - set(SYSTEMS)):
        parser.error(f"unknown systems {unknown}; choose from {', '.join(SYSTEMS)}")
    cfg = read_cfg(CFG)
    setup = Setup(cfg, eval_seed_offset(), args.sb3_torch_threads, args.timeout)

    def run(system: str, seed: int) -> dict[str, Any]:
        return run_one(system, seed, lambda d: command(system, seed, d, setup), setup.timeout)

    runs, load_before = run_all(systems, seeds, run)
    summary = summarize(runs, systems, SYSTEMS)
    report: dict[str, Any] = {
        "benchmark": "CartPole-v1 process wall seconds until greedy mean return >= 475",
        "mode": "quick smoke test, 1 seed" if args.quick else "full",
        "seeds": seeds,
        "eval_interval": int(cfg["eval_interval"]),
        "eval_episodes": int(cfg["eval_episodes"]),
        "sb3_torch_threads": args.sb3_torch_threads,
        "finished": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average": {"before": load_before, "after": os.getloadavg()[0]},
        "machine": machine_info(PACKAGES),
        "measured": MEASURED,
        "ratios": peer_ratios(summary),
        "summary": summary,
        "runs": runs,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    write_doc(DOC, START, END, markdown := table(report))
    print(f"\nwrote {shown(RESULTS)} and {shown(DOC)}\n\n{markdown}")
    exit_if_failed(runs)


if __name__ == "__main__":
    main()
