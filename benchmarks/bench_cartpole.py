"""CartPole-v1 wall seconds to solve: tfa_suite (two env backends) vs Stable-Baselines3 DQN.

    make bench                     # 3 seeds x 3 systems, ~10 min on 2 idle cores
    make bench ARGS=--quick        # 1 seed each: a smoke test
    python benchmarks/bench_cartpole.py --systems=tfa_graph,sb3 --seeds=0,1
    python benchmarks/bench_cartpole.py --quick --out=/tmp/c.json --doc=/tmp/c.md

"Solved" is the greedy policy's mean return over 10 evaluation episodes (fresh gymnasium
CartPole-v1 envs, seeds seed + EVAL_SEED_OFFSET + i) >= 475, checked every --eval_interval
env steps of experiments/configs/cartpole.cfg (its --eval_* lines are passed to SB3 too).
Every system x seed is a fresh subprocess, one at a time; besides the process wall seconds
to solve it reports how many of them are start-up and imports. Writes
benchmarks/results/cartpole.json and the table in docs/benchmarks.md (--out and --doc
elsewhere). The harness, its flags and how it times a run: solve_bench.py.
"""

from __future__ import annotations

from solve_bench import REPO, Pairing, Suite, main, measured_text, sb3, tfa

CFG = REPO / "experiments" / "configs" / "cartpole.cfg"

SUITE = Suite(
    title=__doc__.splitlines()[0],
    make_target="bench",
    env_id="CartPole-v1",
    benchmark="CartPole-v1 process wall seconds until greedy mean return >= {target:g}",
    results=REPO / "benchmarks" / "results" / "cartpole.json",
    markers=("<!-- cartpole-bench:start -->", "<!-- cartpole-bench:end -->"),
    systems={
        "tfa_graph": tfa("tfa_suite, in-graph TF CartPole (default backend)", CFG),
        "tfa_python": tfa("tfa_suite, gymnasium env (--backend=python)", CFG, "--backend=python"),
        "sb3": sb3("Stable-Baselines3 DQN, RL-Zoo hyperparameters", "benchmarks/sb3_cartpole.py"),
    },
    pairings=(
        Pairing("graph", this="tfa_graph", peer="sb3", in_sentence=False),
        Pairing("python", this="tfa_python", peer="sb3", in_sentence=False),
    ),
    default_target=475.0,  # CartPole-v1's registered reward_threshold, tfa_suite's default
    measured=measured_text(
        inside="Interpreter start, imports, tracing/compilation, the initial random collection "
        "and every evaluation are inside.",
        steps="**env steps** / **grad steps**: at the solving evaluation (tfa_suite's env steps "
        "are summed over its `--num_envs` parallel envs).",
        runs="tfa_suite runs `experiments/train.py --flagfile=experiments/configs/cartpole.cfg "
        "--seed=S --root_dir=<fresh tmp dir> --video_episodes=0` (add `--backend=python`); SB3 "
        "runs `benchmarks/sb3_cartpole.py` (RL-Zoo's 5e4 steps, continued to 1.5e5 if "
        "unsolved), with TensorFlow (in this venv only for tfa_suite) kept out of its process "
        "and torch on `--sb3_torch_threads` threads: 1 by default, as fast as 2 on two idle "
        "cores, while 2 threads slow down 3-25x whenever another process competes for a core.",
    ),
)

if __name__ == "__main__":
    main(SUITE)
