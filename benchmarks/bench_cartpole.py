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
import ast
import dataclasses
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CFG = REPO / "experiments" / "configs" / "cartpole.cfg"
RESULTS = REPO / "benchmarks" / "results" / "cartpole.json"
DOC = REPO / "docs" / "benchmarks.md"
START, END = "<!-- cartpole-bench:start -->", "<!-- cartpole-bench:end -->"
PEER, BASELINES = "sb3", ("tfa_graph", "tfa_python")
SYSTEMS = {
    "tfa_graph": "tfa_suite, in-graph TF CartPole (default backend)",
    "tfa_python": "tfa_suite, gymnasium env (--backend=python)",
    "sb3": "Stable-Baselines3 DQN, RL-Zoo hyperparameters",
}
MEDIANS_OF_SOLVED = ("process_seconds", "env_steps", "gradient_steps", "env_steps_per_second")
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
    "runs. tfa_suite runs `experiments/train_dqn.py --flagfile=experiments/configs/cartpole.cfg "
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


def read_cfg(path: Path) -> dict[str, str]:
    pairs = (line.strip()[2:].split("=", 1) for line in path.read_text().splitlines())
    return {p[0]: p[1] for p in pairs if len(p) == 2}


def eval_seed_offset() -> int:
    """tfa_suite.training.EVAL_SEED_OFFSET, read without importing TensorFlow."""
    for node in ast.parse((REPO / "tfa_suite" / "training.py").read_text()).body:
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "EVAL_SEED_OFFSET":
            return int(ast.literal_eval(node.value))
    raise SystemExit("EVAL_SEED_OFFSET not found in tfa_suite/training.py")


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
        sys.executable, "experiments/train_dqn.py", f"--flagfile={CFG.relative_to(REPO)}",
        f"--seed={seed}", f"--root_dir={out_dir / 'run'}", "--video_episodes=0",
    ]  # fmt: skip
    backend = ["--backend=python"] if system == "tfa_python" else []
    return argv + backend, out_dir / "run" / "result.json"


def cpu_stall_seconds() -> float | None:
    """Linux PSI: total time some runnable task waited for a CPU (None without PSI)."""
    try:
        return int(Path("/proc/pressure/cpu").read_text().split("total=", 1)[1].split()[0]) / 1e6
    except (OSError, IndexError, ValueError):
        return None


def run_one(system: str, seed: int, setup: Setup) -> dict[str, Any]:
    out_dir = Path(tempfile.mkdtemp(prefix=f"bench-{system}-{seed}-"))
    try:
        argv, result_path = command(system, seed, out_dir, setup)
        with open(out_dir / "log.txt", "w") as log:
            stall_before, start = cpu_stall_seconds(), time.monotonic()
            proc = subprocess.Popen(argv, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
            try:
                returncode: int | None = proc.wait(timeout=setup.timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                returncode = None
            process_seconds, stall_after = time.monotonic() - start, cpu_stall_seconds()
        result = json.loads(result_path.read_text()) if result_path.exists() else {}
        if returncode != 0 or not result:
            tail = (out_dir / "log.txt").read_text(errors="replace").splitlines()[-15:]
            print(f"  {system} seed {seed} failed (exit {returncode}):", *tail, sep="\n    ")
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    stall = None if stall_before is None or stall_after is None else stall_after - stall_before
    solved = bool(result.get("solved")) and result.get("solved_at_seconds") is not None
    row: dict[str, Any] = {
        "system": system, "seed": seed, "solved": solved, "returncode": returncode,
        "process_seconds": process_seconds, "to_solve_seconds": None, "env_steps": None,
        "gradient_steps": None, "env_steps_per_second": None,
        "cpu_stall_percent": None if stall is None else 100 * stall / process_seconds,
        "final_eval_mean": result.get("final_eval_mean"),
        "eval_seconds": result.get("eval_seconds"), "command": " ".join(argv),
    }  # fmt: skip
    if solved:
        tail_seconds = result["wall_seconds"] - result["solved_at_seconds"]
        to_solve = process_seconds - tail_seconds
        env_steps = result["solved_at_env_steps"]
        row.update(
            to_solve_seconds=to_solve, post_solve_tail_seconds=tail_seconds,
            in_process_solved_at_seconds=result["solved_at_seconds"], env_steps=env_steps,
            # tfa_suite stops at the solving evaluation: its final train_steps is the count then.
            gradient_steps=result.get("solved_at_train_steps", result["train_steps"]),
            env_steps_per_second=env_steps / to_solve,
        )  # fmt: skip
    return row


def median(values: list[float | None], unsolved_as_inf: bool = False) -> float | None:
    """Median of the known values; with `unsolved_as_inf` a None counts as infinitely slow,
    and an infinite median comes back as None (JSON has no infinity)."""
    xs = [math.inf if v is None else v for v in values] if unsolved_as_inf else values
    known = [v for v in xs if v is not None]
    m = statistics.median(known) if known else None
    return None if m is None or math.isinf(m) else m


def summarize(runs: list[dict[str, Any]], systems: list[str]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for system in systems:
        rows = [r for r in runs if r["system"] == system]
        summary[system] = {
            "label": SYSTEMS[system],
            "solved": f"{sum(r['solved'] for r in rows)}/{len(rows)}",
            "median_to_solve_seconds": median([r["to_solve_seconds"] for r in rows], True),
        }
        for key in MEDIANS_OF_SOLVED:
            summary[system][f"median_{key}"] = median([r[key] for r in rows if r["solved"]])
    return summary


def peer_ratios(summary: dict[str, Any]) -> dict[str, float]:
    """SB3's median seconds to solve over each tfa_suite system's (> 1: tfa_suite faster)."""
    peer = summary.get(PEER, {}).get("median_to_solve_seconds")
    ratios = {}
    for system in BASELINES:
        base = summary.get(system, {}).get("median_to_solve_seconds")
        if peer is not None and base:
            ratios[f"{PEER}_over_{system}"] = summary[system]["peer_over_this"] = peer / base
    return ratios


def package_version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    models = [
        line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if "model name" in line
    ]
    git = ["git", "-C", str(REPO)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run([*git, "status", "--porcelain"], capture_output=True, text=True)
    return {
        "cpu_model": models[0] if models else platform.processor(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {p: package_version(p) for p in PACKAGES},
        "git_commit": commit.stdout.strip() + ("-dirty" if dirty.stdout.strip() else ""),
    }


def fmt(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def md_row(cells: list[object]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def table(report: dict[str, Any]) -> str:
    m, load = report["machine"], report["load_average"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    columns = ["s to solve", "process s", "env steps", "grad steps", "env steps/s"]
    lines = [
        f"Command: `make bench` ({report['mode']}; seeds {report['seeds']}; SB3 torch threads "
        f"{report['sb3_torch_threads'] or 'default'}). Run {report['finished']} on "
        f"{m['cpu_model']}, {m['cores']} cores, 1-min load average {load['before']:.2f} before, "
        f"{load['after']:.2f} after; tfa_suite {m['git_commit']}, {versions}.",
        "",
        f"Goal: greedy mean return over {report['eval_episodes']} evaluation episodes on "
        f"gymnasium CartPole-v1 >= 475, checked every {report['eval_interval']} env steps. "
        "Medians over seeds:",
        "",
        md_row(["system", "solved", *columns, "SB3 ÷ this"]),
        md_row(["---", "---"] + ["---:"] * 6),
    ]
    for row in report["summary"].values():
        ratio = row.get("peer_over_this")
        lines.append(md_row([
            row["label"], row["solved"], fmt(row["median_to_solve_seconds"], ".1f"),
            fmt(row["median_process_seconds"], ".1f"), fmt(row["median_env_steps"], ",.0f"),
            fmt(row["median_gradient_steps"], ",.0f"),
            fmt(row["median_env_steps_per_second"], ",.0f"), f"{ratio:.1f}x" if ratio else "–",
        ]))  # fmt: skip
    lines += ["", md_row(["system", "seed", "solved", *columns, "CPU stall %"])]
    lines.append(md_row(["---"] * 3 + ["---:"] * 6))
    for r in report["runs"]:
        lines.append(md_row([
            r["system"], r["seed"], "yes" if r["solved"] else "no",
            fmt(r["to_solve_seconds"], ".1f"), fmt(r["process_seconds"], ".1f"),
            fmt(r["env_steps"], ","), fmt(r["gradient_steps"], ","),
            fmt(r["env_steps_per_second"], ",.0f"), fmt(r["cpu_stall_percent"], ".0f"),
        ]))  # fmt: skip
    return "\n".join([*lines, "", "What is measured: " + MEASURED])


def write_doc(markdown: str) -> None:
    """Replaces what is between the markers in docs/benchmarks.md, and nothing else."""
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    if START not in text or END not in text:
        text = text.rstrip("\n") + f"\n\n{START}\n{END}\n"
    head, rest = text.split(START, 1)
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(f"{head}{START}\n{markdown}\n{END}{rest.split(END, 1)[1]}")


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
    load_before = os.getloadavg()[0]
    print(f"{len(systems)} systems x seeds {seeds}, one process at a time "
          f"(load average {load_before:.2f} on {os.cpu_count()} cores)", flush=True)  # fmt: skip
    runs: list[dict[str, Any]] = []
    for seed in seeds:  # seed-major, so a drifting machine load hits every system alike
        for system in systems:
            print(f"running {system} seed {seed} ...", flush=True)
            runs.append(row := run_one(system, seed, setup))
            print(f"  solved={row['solved']}  to solve {fmt(row['to_solve_seconds'], '.1f')} s  "
                  f"process {row['process_seconds']:.1f} s  env steps {row['env_steps']}  "
                  f"grad steps {row['gradient_steps']}", flush=True)  # fmt: skip
    summary = summarize(runs, systems)
    report: dict[str, Any] = {
        "benchmark": "CartPole-v1 process wall seconds until greedy mean return >= 475",
        "mode": "quick smoke test, 1 seed" if args.quick else "full",
        "seeds": seeds,
        "eval_interval": int(cfg["eval_interval"]),
        "eval_episodes": int(cfg["eval_episodes"]),
        "sb3_torch_threads": args.sb3_torch_threads,
        "finished": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average": {"before": load_before, "after": os.getloadavg()[0]},
        "machine": machine_info(),
        "measured": MEASURED,
        "ratios": peer_ratios(summary),
        "summary": summary,
        "runs": runs,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    write_doc(markdown := table(report))
    print(f"\nwrote {RESULTS.relative_to(REPO)} and {DOC.relative_to(REPO)}\n\n{markdown}")
    if failed := [f"{r['system']} seed {r['seed']}" for r in runs if r["returncode"] != 0]:
        sys.exit(f"runs that failed or timed out: {', '.join(failed)}")


if __name__ == "__main__":
    main()
