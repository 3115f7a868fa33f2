"""The on-policy peer: Stable-Baselines3 PPO on CartPole-v1, timed until solved.

    python benchmarks/sb3_ppo_cartpole.py --seed=0 --out=/tmp/sb3_ppo.json

RL-Zoo's CartPole-v1 PPO hyperparameters: 8 envs, rollouts of 32 steps per env, 20 epochs
of minibatches of 256, and a learning rate and clip range falling linearly to 0 over the
zoo's n_timesteps (1e5), which is therefore also the longest run (--max_env_steps only cuts
it shorter; the schedules still span 1e5). At the start of each rollout (right after the
previous one's gradient steps), once --eval_interval env steps have passed, the greedy
(deterministic) policy plays --eval_episodes episodes on fresh gymnasium envs reset with
seeds seed + eval_seed_offset + i, the same seeds tfa_suite evaluates on; a mean >=
--target stops the run.

The result JSON uses tfa_suite's result.json field names. Its seconds count from this
file's first statement, so the imports of torch and SB3 are inside them.
"""

# ruff: noqa: E402  (the clock starts before the imports it is meant to time)
import time

PROCESS_START = time.monotonic()

import argparse
import json
import math
import sys
from importlib import metadata
from typing import Any

# SB3 imports torch.utils.tensorboard, which imports TensorFlow whenever it is installed
# (+5 s here). It is installed in this venv only for tfa_suite; SB3's own environment has
# no TensorFlow, so its stand-in is used, as there.
if "--allow_tensorflow" not in sys.argv:
    sys.modules["tensorflow"] = None  # type: ignore[assignment]

import torch
from sb3_harness import EvaluateUntilSolved
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.utils import LinearSchedule

IMPORTS_DONE = time.monotonic()

ENV_ID = "CartPole-v1"
# rl-baselines3-zoo hyperparams/ppo.yml, CartPole-v1: n_envs 8, policy 'MlpPolicy',
# n_timesteps 1e5, n_steps 32, batch_size 256, gae_lambda 0.8, gamma 0.98, n_epochs 20,
# ent_coef 0.0, learning_rate lin_0.001, clip_range lin_0.2. The zoo's lin_X is
# progress_remaining * X, which SB3's LinearSchedule(X, 0, 1) computes.
RL_ZOO_N_TIMESTEPS = 100_000
RL_ZOO_N_ENVS = 8
RL_ZOO_HYPERPARAMS: dict[str, Any] = {
    "n_steps": 32,
    "batch_size": 256,
    "gae_lambda": 0.8,
    "gamma": 0.98,
    "n_epochs": 20,
    "ent_coef": 0.0,
    "learning_rate": "lin_0.001",
    "clip_range": "lin_0.2",
}


def model_kwargs() -> dict[str, Any]:
    """The zoo's hyperparameters as PPO constructor arguments (lin_X -> a linear schedule)."""
    kwargs = dict(RL_ZOO_HYPERPARAMS)
    for key, value in kwargs.items():
        if isinstance(value, str) and value.startswith("lin_"):
            kwargs[key] = LinearSchedule(float(value[len("lin_") :]), 0.0, 1.0)
    return kwargs


def gradient_steps(model: PPO) -> int:
    """Minibatch updates so far. SB3's _n_updates counts epochs; each epoch is one pass of
    ceil(n_steps * n_envs / batch_size) minibatches (no target_kl: no early stop)."""
    return model._n_updates * math.ceil(model.n_steps * model.n_envs / model.batch_size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval_interval", type=int, default=1024)
    parser.add_argument("--eval_episodes", type=int, default=10)
    parser.add_argument("--eval_seed_offset", type=int, default=1_000_003)
    parser.add_argument("--target", type=float, default=475.0)
    parser.add_argument(
        "--max_env_steps",
        type=int,
        default=RL_ZOO_N_TIMESTEPS,
        help=f"stop unsolved here (at most the zoo's {RL_ZOO_N_TIMESTEPS:,}, where the "
        "learning rate reaches 0)",
    )
    parser.add_argument("--out", default="", help="also write the result JSON here")
    parser.add_argument("--torch_threads", type=int, default=1, help="0 keeps torch's default")
    parser.add_argument(
        "--allow_tensorflow",
        action="store_true",
        help="let torch.utils.tensorboard import TensorFlow (slower start)",
    )
    args = parser.parse_args()
    if not 0 < args.max_env_steps <= RL_ZOO_N_TIMESTEPS:
        parser.error(f"--max_env_steps must be in 1..{RL_ZOO_N_TIMESTEPS}")
    if args.torch_threads > 0:
        torch.set_num_threads(args.torch_threads)
    env = make_vec_env(ENV_ID, n_envs=RL_ZOO_N_ENVS, seed=args.seed)
    model = PPO("MlpPolicy", env, seed=args.seed, device="cpu", verbose=0, **model_kwargs())
    callback = EvaluateUntilSolved(
        args.eval_interval,
        args.eval_episodes,
        args.seed + args.eval_seed_offset,
        args.target,
        env_id=ENV_ID,
        discrete=True,
        process_start=PROCESS_START,
        grad_steps=gradient_steps,
        max_env_steps=args.max_env_steps,
    )
    # Always the zoo's total, so the linear schedules span its 1e5 steps; the callback
    # stops the run when it is solved or at --max_env_steps.
    model.learn(total_timesteps=RL_ZOO_N_TIMESTEPS, callback=callback)
    callback.maybe_evaluate()
    solved = callback.solved_at
    result = {
        "system": "stable-baselines3 PPO, RL-Zoo CartPole-v1 hyperparameters",
        "algo": "ppo",
        "hyperparameters": {"n_envs": RL_ZOO_N_ENVS, **RL_ZOO_HYPERPARAMS},
        "seed": args.seed,
        "target_return": args.target,
        "solved": solved is not None,
        "solved_at_env_steps": solved[0] if solved else None,
        "solved_at_train_steps": solved[1] if solved else None,
        "solved_at_seconds": solved[2] if solved else None,
        "env_steps": model.num_timesteps,
        "train_steps": gradient_steps(model),
        "final_eval_mean": callback.evaluations[-1]["mean"] if callback.evaluations else None,
        "import_seconds": IMPORTS_DONE - PROCESS_START,
        "eval_seconds": callback.eval_seconds,
        "torch_threads": torch.get_num_threads(),
        "tensorflow_imported": sys.modules.get("tensorflow") is not None,
        "versions": {p: metadata.version(p) for p in ("stable-baselines3", "torch", "gymnasium")},
        "evaluations": callback.evaluations,
        "wall_seconds": time.monotonic() - PROCESS_START,
    }
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)
    print(json.dumps({k: v for k, v in result.items() if k != "evaluations"}), flush=True)


if __name__ == "__main__":
    main()
