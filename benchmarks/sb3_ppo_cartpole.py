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
import math
import sys
from typing import Any

# SB3 imports torch.utils.tensorboard, which imports TensorFlow whenever it is installed
# (+5 s here). It is installed in this venv only for tfa_suite; SB3's own environment has
# no TensorFlow, so its stand-in is used, as there.
if "--allow_tensorflow" not in sys.argv:
    sys.modules["tensorflow"] = None  # type: ignore[assignment]

from sb3_harness import EvaluateUntilSolved, add_flags, report, set_torch_threads
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
    add_flags(
        parser,
        eval_interval=1024,
        target=475.0,
        max_env_steps=RL_ZOO_N_TIMESTEPS,
        torch_threads=1,
        max_env_steps_help=f"stop unsolved here (at most the zoo's {RL_ZOO_N_TIMESTEPS:,}, "
        "where the learning rate reaches 0)",
    )
    args = parser.parse_args()
    if not 0 < args.max_env_steps <= RL_ZOO_N_TIMESTEPS:
        parser.error(f"--max_env_steps must be in 1..{RL_ZOO_N_TIMESTEPS}")
    set_torch_threads(args)
    env = make_vec_env(ENV_ID, n_envs=RL_ZOO_N_ENVS, seed=args.seed)
    model = PPO("MlpPolicy", env, seed=args.seed, device="cpu", verbose=0, **model_kwargs())
    callback = EvaluateUntilSolved(
        args,
        env_id=ENV_ID,
        process_start=PROCESS_START,
        grad_steps=gradient_steps,
        max_env_steps=args.max_env_steps,
    )
    # Always the zoo's total, so the linear schedules span its 1e5 steps; the callback
    # stops the run when it is solved or at --max_env_steps.
    model.learn(total_timesteps=RL_ZOO_N_TIMESTEPS, callback=callback)
    callback.maybe_evaluate()
    report(
        args,
        model,
        callback,
        about={
            "system": "stable-baselines3 PPO, RL-Zoo CartPole-v1 hyperparameters",
            "algo": "ppo",
            "hyperparameters": {"n_envs": RL_ZOO_N_ENVS, **RL_ZOO_HYPERPARAMS},
        },
        train_steps=gradient_steps(model),
        process_start=PROCESS_START,
        imports_done=IMPORTS_DONE,
    )


if __name__ == "__main__":
    main()
