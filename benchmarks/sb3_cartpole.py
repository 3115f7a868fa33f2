"""The benchmark's peer: Stable-Baselines3 DQN on CartPole-v1, timed until solved.

    python benchmarks/sb3_cartpole.py --seed=0 --out=/tmp/sb3.json

RL-Zoo's CartPole-v1 DQN hyperparameters (its n_timesteps is 5e4); an unsolved run goes
on to --max_env_steps with epsilon held at its final value. After each rollout's gradient
steps, once --eval_interval env steps have passed, the greedy (deterministic) policy plays
--eval_episodes episodes on fresh gymnasium envs reset with seeds seed + eval_seed_offset
+ i, the same seeds tfa_suite evaluates on; a mean >= --target stops the run.

The result JSON uses tfa_suite's result.json field names. Its seconds count from this
file's first statement, so the imports of torch and SB3 are inside them.
"""

# ruff: noqa: E402  (the clock starts before the imports it is meant to time)
import time

PROCESS_START = time.monotonic()

import argparse
import sys
from typing import Any

# SB3 imports torch.utils.tensorboard, which imports TensorFlow whenever it is installed
# (+5 s here). It is installed in this venv only for tfa_suite; SB3's own environment has
# no TensorFlow, so its stand-in is used, as there.
if "--allow_tensorflow" not in sys.argv:
    sys.modules["tensorflow"] = None  # type: ignore[assignment]

from sb3_harness import EvaluateUntilSolved, add_flags, report, set_torch_threads
from stable_baselines3 import DQN
from stable_baselines3.common.env_util import make_vec_env

IMPORTS_DONE = time.monotonic()

ENV_ID = "CartPole-v1"
# rl-baselines3-zoo hyperparams/dqn.yml, CartPole-v1.
RL_ZOO_N_TIMESTEPS = 50_000
RL_ZOO_HYPERPARAMS: dict[str, Any] = {
    "learning_rate": 2.3e-3,
    "batch_size": 64,
    "buffer_size": 100_000,
    "learning_starts": 1_000,
    "gamma": 0.99,
    "target_update_interval": 10,
    "train_freq": 256,
    "gradient_steps": 128,
    "exploration_fraction": 0.16,
    "exploration_final_eps": 0.04,
    "policy_kwargs": {"net_arch": [256, 256]},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_flags(parser, eval_interval=2048, target=475.0, max_env_steps=150_000, torch_threads=0)
    args = parser.parse_args()
    set_torch_threads(args)
    env = make_vec_env(ENV_ID, n_envs=1, seed=args.seed)
    model = DQN("MlpPolicy", env, seed=args.seed, device="cpu", verbose=0, **RL_ZOO_HYPERPARAMS)
    callback = EvaluateUntilSolved(args, env_id=ENV_ID, process_start=PROCESS_START)
    # RL-Zoo's run first (its epsilon schedule spans these steps), then the extension.
    model.learn(total_timesteps=min(RL_ZOO_N_TIMESTEPS, args.max_env_steps), callback=callback)
    remaining = args.max_env_steps - model.num_timesteps
    if callback.solved_at is None and remaining > 0:
        model.learn(total_timesteps=remaining, callback=callback, reset_num_timesteps=False)
    callback.maybe_evaluate()
    report(
        args,
        model,
        callback,
        about={"system": "stable-baselines3 DQN, RL-Zoo CartPole-v1 hyperparameters"},
        train_steps=model._n_updates,
        process_start=PROCESS_START,
        imports_done=IMPORTS_DONE,
    )


if __name__ == "__main__":
    main()
