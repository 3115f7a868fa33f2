"""CartPole-v1 wall seconds to solve: tfa_suite PPO vs Stable-Baselines3 PPO.

    make bench-onpolicy                    # 3 seeds x 2 systems, one process at a time
    make bench-onpolicy ARGS=--quick       # 1 seed each: a smoke test
    python benchmarks/bench_onpolicy.py --systems=sb3_ppo --seeds=0,1

"Solved" is the greedy policy's mean return over 10 evaluation episodes (fresh gymnasium
CartPole-v1 envs, seeds seed + EVAL_SEED_OFFSET + i) >= 475, checked every --eval_interval
env steps of experiments/configs/cartpole_ppo.cfg (or --cfg; its --eval_* lines, and its
--target_return if it has one, are passed to SB3 too). Every system x seed is a fresh
subprocess, one at a time. Beside the process wall seconds to solve it reports each run's
own clock at the solving evaluation and, where the run prints it, its tracing time.
Writes benchmarks/results/onpolicy.json and the section in docs/benchmarks.md (--out and
--doc elsewhere). The harness, its flags and how it times a run: solve_bench.py.
"""

from __future__ import annotations

from solve_bench import REPO, Pairing, Suite, main, measured_text, sb3, tfa

SUITE = Suite(
    title=__doc__.splitlines()[0],
    make_target="bench-onpolicy",
    env_id="CartPole-v1",
    benchmark="CartPole-v1 PPO process wall seconds until greedy mean return >= {target:g}",
    results=REPO / "benchmarks" / "results" / "onpolicy.json",
    markers=("<!-- onpolicy-bench:start -->", "<!-- onpolicy-bench:end -->"),
    heading="## CartPole-v1: PPO vs Stable-Baselines3",
    systems={
        "tfa_ppo": tfa(
            "tfa_suite PPO, in-graph TF CartPole (default backend)",
            REPO / "experiments" / "configs" / "cartpole_ppo.cfg",
        ),
        "sb3_ppo": sb3(
            "Stable-Baselines3 PPO, RL-Zoo hyperparameters", "benchmarks/sb3_ppo_cartpole.py"
        ),
    },
    pairings=(Pairing("ppo", this="tfa_ppo", peer="sb3_ppo", goal=1.5),),
    default_target=475.0,  # CartPole-v1's registered reward_threshold, tfa_suite's default
    cfg_flag=True,
    measured=measured_text(
        inside="Interpreter start, imports, tracing and every evaluation are inside.",
        steps="**env steps** / **grad steps**: at the solving evaluation, env steps summed "
        "over the parallel envs, grad steps counted as minibatch updates.",
        runs="tfa_suite runs `experiments/train.py "
        "--flagfile=experiments/configs/cartpole_ppo.cfg --seed=S --root_dir=<fresh tmp dir> "
        "--video_episodes=0`; SB3 runs `benchmarks/sb3_ppo_cartpole.py` (RL-Zoo's PPO "
        "hyperparameters: 8 envs, n_steps 32, batch 256, 20 epochs, GAE lambda 0.8, gamma "
        "0.98, learning rate and clip range linear from 1e-3 and 0.2 to 0 over its 1e5 steps, "
        "which is also its longest run), with TensorFlow (in this venv only for tfa_suite) "
        "kept out of its process and torch on `--sb3_torch_threads` threads (1 by default).",
    ),
)

if __name__ == "__main__":
    main(SUITE)
