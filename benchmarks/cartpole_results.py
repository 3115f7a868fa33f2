"""The README's CartPole results: `make train-cartpole` for several seeds, then evaluate.py.

    python benchmarks/cartpole_results.py [--seeds=0,1,2] [--out_dir=runs/results]

For each seed it runs the exact command `make train-cartpole` runs (as a subprocess, so
process wall time includes imports and compilation), then scores the exported policy in
a fresh process with experiments/evaluate.py twice: on the evaluation seeds training used
(which must reproduce the solving score) and on 100 unseen episodes. It writes
benchmarks/results/cartpole_seeds.json and the table between the markers in README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EVAL_SEED_OFFSET = 1_000_003  # tfa_suite.training.EVAL_SEED_OFFSET (not imported: no TF here)
UNSEEN_SEED = 5_000_000
START, END = "<!-- cartpole-results:start -->", "<!-- cartpole-results:end -->"


def run(cmd: list[str]) -> tuple[str, float]:
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"error: {' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc.stdout, seconds


def evaluate(policy_dir: str, seed: int, episodes: int) -> float:
    out, _ = run(
        [
            sys.executable,
            "experiments/evaluate.py",
            f"--policy_dir={policy_dir}",
            f"--seed={seed}",
            f"--episodes={episodes}",
        ]
    )
    match = re.search(r"return (-?[\d.]+) ± ([\d.]+)", out)
    if not match:
        sys.exit(f"error: cannot read evaluate.py output:\n{out}")
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out_dir", default="runs/results")
    args = parser.parse_args()
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        root = os.path.join(args.out_dir, f"cartpole-seed{seed}")
        shutil.rmtree(os.path.join(REPO, root), ignore_errors=True)
        cmd = [
            sys.executable,
            "experiments/train.py",
            "--flagfile=experiments/configs/cartpole.cfg",
            f"--seed={seed}",
            f"--root_dir={root}",
        ]
        print("$", " ".join(cmd[1:]), flush=True)
        _, wall = run(cmd)
        with open(os.path.join(REPO, root, "result.json")) as f:
            result = json.load(f)
        policy = os.path.join(root, "policy")
        row = {
            "seed": seed,
            "solved": result["solved"],
            "env_steps": result["env_steps"],
            "train_steps": result["train_steps"],
            "process_wall_seconds": round(wall, 1),
            "train_seconds_to_solve": result["solved_at_seconds"],
            "eval_return_at_stop": result["final_eval_mean"],
            "evaluate_py_same_seeds": evaluate(policy, seed + EVAL_SEED_OFFSET, 10),
            "evaluate_py_100_unseen": evaluate(policy, UNSEEN_SEED, 100),
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
    os.makedirs(os.path.join(REPO, "benchmarks", "results"), exist_ok=True)
    with open(os.path.join(REPO, "benchmarks", "results", "cartpole_seeds.json"), "w") as f:
        json.dump({"command": "make results-cartpole", "runs": rows}, f, indent=2)
    table = [
        START,
        "| seed | solved | env steps | gradient steps | s to solve (in run) | process wall s "
        "| eval at stop (10 ep.) | evaluate.py, same 10 seeds | evaluate.py, 100 unseen "
        "episodes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        table.append(
            f"| {r['seed']} | {'yes' if r['solved'] else 'no'} | {r['env_steps']:,} | "
            f"{r['train_steps']:,} | {r['train_seconds_to_solve']:.1f} | "
            f"{r['process_wall_seconds']:.1f} | "
            f"{r['eval_return_at_stop']:.1f} | {r['evaluate_py_same_seeds']:.1f} | "
            f"{r['evaluate_py_100_unseen']:.1f} |"
        )
    table.append(END)
    readme = os.path.join(REPO, "README.md")
    text = open(readme).read()
    if START in text and END in text:
        text = text[: text.index(START)] + "\n".join(table) + text[text.index(END) + len(END) :]
        with open(readme, "w") as f:
            f.write(text)
    print("\n".join(table[1:-1]))


if __name__ == "__main__":
    main()
