"""The results tables: train each config for several seeds, then evaluate.py.

    python benchmarks/results_table.py --suite=cartpole [--seeds=0,1,2] [--out_dir=runs/results]
    python benchmarks/results_table.py --suite=pendulum          # SAC, TD3 and DDPG
    python benchmarks/results_table.py --suite=value             # dueling, prioritized, C51
    python benchmarks/results_table.py --suite=tabular           # tabular Q-learning
    python benchmarks/results_table.py --suite=onpolicy          # PPO, A2C, REINFORCE

For each entry and seed it runs the exact command of the entry's make target
(`make train-cartpole`, `make train-pendulum AGENT=...`, `make train-tabular ...`, with
the entry's extra flags; for the on-policy agents `python experiments/train.py
--flagfile=...`) as a subprocess, so process wall time includes
imports and compilation. Then it scores the exported policy in a fresh process with
experiments/evaluate.py twice: on the evaluation seeds training used (which must
reproduce the solving score) and on 100 unseen episodes. It writes
benchmarks/results/<suite>_seeds.json, the suite's per-seed table between its markers in
docs/results.md, and the medians of every suite's saved runs between the agents-table
markers in README.md.

`--envs=Pendulum-v1 --keep_others` reruns only that env's entries and keeps the suite's
other rows as they were saved; each row records the command that made it. A run taken
beside other work on the machine is marked with `--shared_machine`, and its wall times
are labelled "(shared)" in the tables.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS_DOC = os.path.join(REPO, "docs", "results.md")  # the per-seed tables
README = os.path.join(REPO, "README.md")  # the agents table
sys.path.insert(0, REPO)
from tfa_suite.config import EVAL_SEED_OFFSET  # noqa: E402  (pure Python: no TensorFlow here)

UNSEEN_SEED = 5_000_000


@dataclasses.dataclass(frozen=True)
class Entry:
    """One row group of a suite: a shipped config (plus flags) run for every seed."""

    label: str  # the agent column
    config: str
    env: str
    command: str  # what a user runs for one seed
    flags: tuple[str, ...] = ()
    # The config's --target_return, checked before any run, where the env registers no
    # reward_threshold (without it a run never stops early and never counts as solved).
    target: float | None = None

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "_", self.label.lower()).strip("_")


CARTPOLE = "experiments/configs/cartpole.cfg"
NOT_SLIPPERY = ('--env_kwargs={"is_slippery": false}', "--target_return=1.0")
NOT_SLIPPERY_ARGS = """--env_kwargs='{"is_slippery": false}' --target_return=1.0"""


def _own_config(label: str, config: str, env: str, **kwargs: object) -> Entry:
    """An entry whose command is `train.py --flagfile=config` itself."""
    command = f"python experiments/train.py --flagfile={config}"
    return Entry(label, config, env, command, **kwargs)


# suite -> (the make target that makes the same runs, its entries)
SUITES = {
    "cartpole": (
        "make results-cartpole",
        [Entry("dqn", CARTPOLE, "CartPole-v1", "make train-cartpole")],
    ),
    "pendulum": (
        "make results-pendulum",
        [
            Entry(a, f"experiments/configs/pendulum_{a}.cfg", "Pendulum-v1",
                  f"make train-pendulum AGENT={a}")
            for a in ("sac", "td3", "ddpg")
        ],
    ),
    # The value family's flags on the shipped CartPole DQN, alone and combined, and C51.
    "value": (
        "make results-value",
        [
            Entry("dqn, dueling", CARTPOLE, "CartPole-v1",
                  "make train-cartpole ARGS=--dueling", ("--dueling",)),
            Entry("dqn, prioritized", CARTPOLE, "CartPole-v1",
                  "make train-cartpole ARGS=--replay_sampler=prioritized",
                  ("--replay_sampler=prioritized",)),
            Entry("dqn, dueling + prioritized", CARTPOLE, "CartPole-v1",
                  "make train-cartpole ARGS='--dueling --replay_sampler=prioritized'",
                  ("--dueling", "--replay_sampler=prioritized")),
            _own_config("c51", "experiments/configs/cartpole_c51.cfg", "CartPole-v1"),
        ],
    ),
    # Tabular Q-learning on its grids: CartPole-v1 to 195 (v0's threshold) and
    # MountainCar-v0 to -150, as its configs' --target_return say.
    "tabular": (
        "make results-tabular",
        [
            Entry("tabular_q (CartPole)", "experiments/configs/cartpole_tabular.cfg",
                  "CartPole-v1 (≥ 195)", "make train-tabular TABULAR_ENV=cartpole"),
            Entry("tabular_q (MountainCar)", "experiments/configs/mountaincar_tabular.cfg",
                  "MountainCar-v0 (≥ −150)", "make train-tabular TABULAR_ENV=mountaincar"),
            # FrozenLake-v1's Discrete cells: the slippery map to its registered 0.70 (the
            # best possible is about 0.74), the deterministic one to 1.0, its optimum.
            Entry("tabular_q (FrozenLake, slippery)", "experiments/configs/frozenlake_tabular.cfg",
                  "FrozenLake-v1 slippery (≥ 0.70)", "make train-tabular TABULAR_ENV=frozenlake"),
            Entry("tabular_q (FrozenLake, deterministic)",
                  "experiments/configs/frozenlake_tabular.cfg",
                  "FrozenLake-v1 deterministic (1.0)",
                  "make train-tabular TABULAR_ENV=frozenlake ARGS=\"--env_kwargs='{\\\"is_slippery"
                  "\\\": false}' --target_return=1.0\"",
                  NOT_SLIPPERY),
            _own_config("dqn (FrozenLake, slippery)", "experiments/configs/frozenlake_dqn.cfg",
                        "FrozenLake-v1 slippery (≥ 0.70)"),
            Entry("dqn (FrozenLake, deterministic)", "experiments/configs/frozenlake_dqn.cfg",
                  "FrozenLake-v1 deterministic (1.0)",
                  "python experiments/train.py --flagfile=experiments/configs/frozenlake_dqn.cfg "
                  + NOT_SLIPPERY_ARGS, NOT_SLIPPERY),
        ],
    ),
    # The rollout loop's agents on CartPole-v1 (to its registered 475), and PPO on
    # Pendulum-v1 (to its config's --target_return of -200).
    "onpolicy": (
        "make results-onpolicy",
        [
            *(_own_config(f"{label} (CartPole)", config, "CartPole-v1")
              for label, config in (
                  ("ppo", "experiments/configs/cartpole_ppo.cfg"),
                  ("a2c", "experiments/configs/cartpole_a2c.cfg"),
                  ("reinforce + baseline", "experiments/configs/cartpole_reinforce.cfg"),
              )),
            _own_config("ppo (Pendulum)", "experiments/configs/pendulum_ppo.cfg", "Pendulum-v1",
                        target=-200.0),
        ],
    ),
}  # fmt: skip


def env_id(entry: Entry) -> str:
    """The gymnasium id an entry's env column starts with (the rest says its target)."""
    return entry.env.split(" ")[0]


def check_configs(entries: list[Entry]) -> None:
    """Every entry's config exists (and sets its target) before the first run starts."""
    for entry in entries:
        path = os.path.join(REPO, entry.config)
        if not os.path.isfile(path):
            sys.exit(f"error: {entry.config} not found (the config of {entry.label!r})")
        if entry.target is None:
            continue
        with open(path) as f:
            values = [
                ln.strip().split("=", 1)[1] for ln in f if ln.strip().startswith("--target_return=")
            ]
        if not values or float(values[-1]) != entry.target:
            found = f"--target_return={values[-1]}" if values else "no --target_return"
            sys.exit(
                f"error: {entry.config} has {found}; {entry.label!r} needs "
                f"--target_return={entry.target:g}"
            )


def run(cmd: list[str]) -> tuple[str, float]:
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"error: {' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc.stdout, seconds


def evaluate(policy_dir: str, seed: int, episodes: int) -> float:
    """evaluate.py's mean return, read from its --json record at full precision (its
    printed line rounds to 0.1, too coarse for FrozenLake's success rates)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        record = os.path.join(tmp, "eval.json")
        run(
            [
                sys.executable,
                "experiments/evaluate.py",
                f"--policy_dir={policy_dir}",
                f"--seed={seed}",
                f"--episodes={episodes}",
                f"--json={record}",
            ]
        )
        with open(record) as f:
            return float(json.load(f)["mean"])


def score(value: float) -> str:
    """A return as the tables print it: 0.1 for CartPole's hundreds, 0.01 for rates."""
    return f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"


def train_and_score(entry: Entry, seed: int, out_dir: str, suite: str) -> dict:
    root = os.path.join(out_dir, f"{suite}-{entry.slug}-seed{seed}")
    shutil.rmtree(os.path.join(REPO, root), ignore_errors=True)
    cmd = [
        sys.executable,
        "experiments/train.py",
        f"--flagfile={entry.config}",
        *entry.flags,
        f"--seed={seed}",
        f"--root_dir={root}",
    ]
    print("$", " ".join(cmd[1:]), flush=True)
    _, wall = run(cmd)
    with open(os.path.join(REPO, root, "result.json")) as f:
        result = json.load(f)
    policy = os.path.join(root, "policy")
    return {
        "agent": entry.label,
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


def markdown(rows: list[dict], start: str, end: str, with_agent: bool) -> list[str]:
    head = "| agent " if with_agent else ""
    table = [
        start,
        head + "| seed | solved | env steps | gradient steps | s to solve (in run) | process "
        "wall s | eval at stop | evaluate.py, same 10 seeds | evaluate.py, 100 "
        "unseen episodes |",
        "|---" * (10 if with_agent else 9) + "|",
    ]
    for r in rows:
        seconds = r["train_seconds_to_solve"]
        table.append(
            (f"| {r['agent']} " if with_agent else "")
            + f"| {r['seed']} | {'yes' if r['solved'] else 'no'} | {r['env_steps']:,} | "
            f"{r['train_steps']:,} | {'–' if seconds is None else f'{seconds:.1f}'} | "
            f"{r['process_wall_seconds']:.1f}{' (shared)' if r.get('shared_machine') else ''} | "
            f"{score(r['eval_return_at_stop'])} | {score(r['evaluate_py_same_seeds'])} | "
            f"{score(r['evaluate_py_100_unseen'])} |"
        )
    table.append(end)
    return table


def interval_table(rows: list[dict], start: str, end: str) -> list[str]:
    """Per entry: the median and the interquartile mean of the 100-unseen-episode scores,
    each with its 95% stratified-bootstrap interval (rliable, tfa_suite.study.aggregate),
    beside the median env steps; with 3 seeds the IQM is the middle run and the interval
    is wide, which is the honest reading of three seeds (SEEDS=0,1,2,3,4 narrows it)."""
    import numpy as np

    from tfa_suite.study.aggregate import interval_estimates

    by_agent: dict[str, list[dict]] = {}
    for r in rows:
        by_agent.setdefault(r.get("agent", "dqn"), []).append(r)
    scores = {
        a: np.array([[r["evaluate_py_100_unseen"]] for r in rs]) for a, rs in by_agent.items()
    }
    estimates = interval_estimates(scores)
    table = [
        start,
        "| agent | seeds | solved | median env steps | median score [95% CI] | IQM score "
        "[95% CI] |",
        "|---|---|---|---:|---|---|",
    ]
    for agent, rs in by_agent.items():
        e = estimates[agent]
        table.append(
            f"| {agent} | {', '.join(str(r['seed']) for r in rs)} | "
            f"{sum(r['solved'] for r in rs)}/{len(rs)} | "
            f"{float(np.median([r['env_steps'] for r in rs])):,.0f} | {score(e['median'])} "
            f"[{score(e['median_ci'][0])}, {score(e['median_ci'][1])}] | {score(e['iqm'])} "
            f"[{score(e['iqm_ci'][0])}, {score(e['iqm_ci'][1])}] |"
        )
    table.append(end)
    return table


def kept_rows(path: str, suite: str, rerun: list[Entry]) -> list[dict]:
    """The saved rows of the suite's entries that are not rerun, each naming its command."""
    if not os.path.isfile(path):
        sys.exit(f"error: --keep_others: {path} does not exist; run the whole suite first")
    with open(path) as f:
        saved = json.load(f)
    base = SUITES[suite][0]
    if saved.get("command", "").split(" ARGS=")[0] != base:
        sys.exit(f"error: --keep_others: {path} was not written by {base}")
    labels = {e.label for e in rerun}
    kept = [r for r in saved["runs"] if r.get("agent", "dqn") not in labels]
    for row in kept:
        row.setdefault("command", saved["command"])
    return kept


def write_summary(readme_text: str) -> str:
    """The README's agent x env table: medians of every suite's saved runs."""
    import statistics

    start, end = "<!-- agents-table:start -->", "<!-- agents-table:end -->"
    if start not in readme_text or end not in readme_text:
        return readme_text
    lines = [
        start,
        "| agent | env | solved | median env steps | median gradient steps | median process "
        "wall s | command |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for suite, (target, configs) in SUITES.items():
        path = os.path.join(REPO, "benchmarks", "results", f"{suite}_seeds.json")
        if not os.path.isfile(path):
            continue
        with open(path) as f:
            runs = json.load(f)["runs"]
        for entry in configs:
            rows = [r for r in runs if r.get("agent", "dqn") == entry.label]
            if not rows:
                continue
            env, command = entry.env, entry.command
            lines.append(
                f"| {entry.label} | {env} | {sum(r['solved'] for r in rows)}/{len(rows)} | "
                f"{statistics.median(r['env_steps'] for r in rows):,.0f} | "
                f"{statistics.median(r['train_steps'] for r in rows):,.0f} | "
                f"{statistics.median(r['process_wall_seconds'] for r in rows):.1f}"
                f"{' (shared)' if any(r.get('shared_machine') for r in rows) else ''} | "
                f"`{command}` (`{target}`, seeds {', '.join(str(r['seed']) for r in rows)}) |"
            )
    lines.append(end)
    return (
        readme_text[: readme_text.index(start)]
        + "\n".join(lines)
        + readme_text[readme_text.index(end) + len(end) :]
    )


def write_tables(
    table: list[str],
    start: str,
    end: str,
    results_doc: str = RESULTS_DOC,
    readme: str | None = README,
) -> None:
    """The suite's table between its markers in `results_doc`, and the agents table (from
    every suite's saved runs) between its markers in `readme`."""
    with open(results_doc) as f:
        text = f.read()
    if start in text and end in text:
        text = text[: text.index(start)] + "\n".join(table) + text[text.index(end) + len(end) :]
        with open(results_doc, "w") as f:
            f.write(text)
    else:
        name = os.path.relpath(results_doc, REPO)
        print(f"note: {name} has no {start} markers; the table is printed only")
    if readme is None:
        return
    with open(readme) as f:
        text = f.read()
    with open(readme, "w") as f:
        f.write(write_summary(text))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", choices=sorted(SUITES), default="cartpole")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out_dir", default="runs/results")
    parser.add_argument(
        "--envs",
        default="",
        help="only the suite's entries on these envs (comma-separated ids); the table and "
        "JSON then hold only them, and the command recorded says so",
    )
    parser.add_argument(
        "--keep_others",
        action="store_true",
        help="with --envs: keep the saved rows of the suite's other entries in the JSON and "
        "the tables, each with the command that made it",
    )
    parser.add_argument(
        "--shared_machine",
        action="store_true",
        help="these runs shared the machine with other work: their wall times are labelled",
    )
    parser.add_argument(
        "--tables_only",
        action="store_true",
        help="train nothing: rewrite the suite's tables from its saved JSON",
    )
    args = parser.parse_args()
    if args.tables_only:
        write_suite_tables(args.suite, saved_rows(args.suite))
        return
    if args.keep_others and not args.envs:
        sys.exit("error: --keep_others needs --envs (without it every entry is rerun)")
    target, configs = SUITES[args.suite]
    if args.envs:
        wanted = set(args.envs.split(","))
        unknown = wanted - {env_id(e) for e in configs}
        if unknown:
            sys.exit(f"error: --envs {sorted(unknown)} not in suite {args.suite}")
        configs = [e for e in configs if env_id(e) in wanted]
        target = f"{target} ARGS=--envs={args.envs}"
    seeds = [int(s) for s in args.seeds.split(",")]
    check_configs(configs)
    path = os.path.join(REPO, "benchmarks", "results", f"{args.suite}_seeds.json")
    kept = kept_rows(path, args.suite, configs) if args.keep_others else []
    rows = []
    for entry in configs:
        for seed in seeds:
            row = train_and_score(entry, seed, args.out_dir, args.suite)
            row["command"] = target
            if args.shared_machine:
                row["shared_machine"] = True
            print(json.dumps(row), flush=True)
            rows.append(row)
    if kept:  # in the suite's order of entries
        order = [e.label for e in SUITES[args.suite][1]]
        rows = sorted(kept + rows, key=lambda r: order.index(r.get("agent", "dqn")))
        target = " + ".join(dict.fromkeys(r["command"] for r in rows))
    os.makedirs(os.path.join(REPO, "benchmarks", "results"), exist_ok=True)
    with open(path, "w") as f:
        json.dump({"command": target, "runs": rows}, f, indent=2)
    write_suite_tables(args.suite, rows)


def saved_rows(suite: str) -> list[dict]:
    path = os.path.join(REPO, "benchmarks", "results", f"{suite}_seeds.json")
    if not os.path.isfile(path):
        sys.exit(f"error: --tables_only: {path} does not exist; run the suite first")
    with open(path) as f:
        return json.load(f)["runs"]


def write_suite_tables(suite: str, rows: list[dict]) -> None:
    """The per-seed table and the interval table, into docs/results.md and the README."""
    start, end = f"<!-- {suite}-results:start -->", f"<!-- {suite}-results:end -->"
    table = markdown(rows, start, end, with_agent=len({r.get("agent") for r in rows}) > 1)
    write_tables(table, start, end)
    print("\n".join(table[1:-1]))
    start, end = f"<!-- {suite}-intervals:start -->", f"<!-- {suite}-intervals:end -->"
    intervals = interval_table(rows, start, end)
    write_tables(intervals, start, end, readme=None)  # the README's table was just written
    print("\n".join(intervals[1:-1]))


if __name__ == "__main__":
    main()
