"""Pendulum-v1 wall seconds to solve: tfa_suite's TD3, SAC and DDPG vs Stable-Baselines3's.

    make bench-continuous                  # 3 seeds x 8 systems, one process at a time
    make bench-continuous ARGS=--quick     # 1 seed each
    python benchmarks/bench_continuous.py --smoke --systems=tfa_sac,sb3_sac  # ~1 min
    python benchmarks/bench_continuous.py --systems=tfa_td3,sb3_td3 --seeds=0,1

"Solved" is the greedy policy's mean return over 10 evaluation episodes (fresh gymnasium
Pendulum-v1 envs, seeds seed + EVAL_SEED_OFFSET + i) >= -200, checked every 1000 env
steps (the --eval_* and --target_return lines of experiments/configs/pendulum_<algo>.cfg,
which must agree, passed to SB3 too). Every system x seed is a fresh subprocess, one at a
time; besides the process wall seconds to solve it reports how many of them are start-up
and imports. Writes benchmarks/results/pendulum.json and the table in docs/benchmarks.md
(--out and --doc elsewhere; --smoke writes to the temp dir unless they are given). The
harness, its flags and how it times a run: solve_bench.py.
"""

from __future__ import annotations

from solve_bench import REPO, Pairing, Suite, System, main, measured_text, sb3, tfa

ALGOS = ("td3", "sac", "ddpg")
# The zoo's network sizes: tfa_suite's configs use (64, 64). The `_zoonet` systems run
# tfa_suite's config with the zoo's networks instead, to show how much of the gap the
# network size makes.
ZOO_LAYERS = {"td3": "400,300", "sac": "256,256", "ddpg": "400,300"}
ZOONET = ("td3", "sac")
GOAL_RATIO = {"td3": 2.0, "sac": 2.0}  # SB3 ÷ tfa_suite median s to solve, per the issue

SYSTEMS: dict[str, System] = {}
PAIRINGS: list[Pairing] = []
for _algo in ALGOS:
    _cfg = REPO / "experiments" / "configs" / f"pendulum_{_algo}.cfg"
    _name = _algo.upper()
    SYSTEMS[f"tfa_{_algo}"] = tfa(f"tfa_suite {_name}, pendulum_{_algo}.cfg", _cfg)
    PAIRINGS.append(Pairing(_algo, f"tfa_{_algo}", f"sb3_{_algo}", key=f"sb3_over_tfa_{_algo}",
                            goal=GOAL_RATIO.get(_algo)))  # fmt: skip
    if _algo in ZOONET:
        _layers = ZOO_LAYERS[_algo]
        SYSTEMS[f"tfa_{_algo}_zoonet"] = tfa(
            f"tfa_suite {_name}, pendulum_{_algo}.cfg with the zoo's "
            f"({_layers.replace(',', ', ')}) networks",
            _cfg, f"--actor_layers={_layers}", f"--critic_layers={_layers}",
        )  # fmt: skip
        PAIRINGS.append(Pairing(f"{_algo}_zoonet", f"tfa_{_algo}_zoonet", f"sb3_{_algo}",
                                key=f"sb3_over_tfa_{_algo}_zoonet", in_sentence=False))  # fmt: skip
    SYSTEMS[f"sb3_{_algo}"] = sb3(
        f"Stable-Baselines3 {_name}, RL-Zoo hyperparameters",
        "benchmarks/sb3_continuous.py", f"--algo={_algo}",
    )  # fmt: skip

SUITE = Suite(
    title=__doc__.splitlines()[0],
    make_target="bench-continuous",
    env_id="Pendulum-v1",
    benchmark="Pendulum-v1 process wall seconds until greedy mean return >= {target:g}",
    results=REPO / "benchmarks" / "results" / "pendulum.json",
    markers=("<!-- pendulum-bench:start -->", "<!-- pendulum-bench:end -->"),
    heading="## Pendulum-v1: TD3, SAC and DDPG vs Stable-Baselines3",
    systems=SYSTEMS,
    pairings=tuple(PAIRINGS),
    smoke_env_steps=2000,
    measured=measured_text(
        inside="Interpreter start, imports, tracing/compilation, the initial random collection "
        "and every evaluation are inside.",
        steps="**env steps** / **grad steps**: at the solving evaluation.",
        ratio="**SB3 ÷ this**: SB3's median s to solve for the same algorithm over tfa_suite's "
        "(the goal is >= 2 for TD3 and SAC).",
        runs="tfa_suite runs `experiments/train.py "
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
        "separates the network size from the rest.",
    ),
)

if __name__ == "__main__":
    main(SUITE)
