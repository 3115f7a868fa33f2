"""The continuous peer: Stable-Baselines3 SAC/TD3/DDPG on Pendulum-v1, timed until solved.

    python benchmarks/sb3_continuous.py --algo=sac --seed=0 --out=/tmp/sb3.json

RL-Zoo's Pendulum-v1 hyperparameters for --algo (its n_timesteps is 2e4); an unsolved run
goes on to --max_env_steps with the same settings. After each rollout's gradient steps
(one env step, one gradient step once learning has started), once --eval_interval env
steps have passed, the greedy (deterministic) policy plays --eval_episodes episodes on
fresh gymnasium envs reset with seeds seed + eval_seed_offset + i, the same seeds tfa_suite
evaluates on; a mean >= --target stops the run.

The result JSON uses tfa_suite's result.json field names. Its seconds count from this
file's first statement, so the imports of torch and SB3 are inside them.
"""

# ruff: noqa: E402  (the clock starts before the imports it is meant to time)
import time

PROCESS_START = time.monotonic()

import argparse
import copy
import sys
from typing import Any

# SB3 imports torch.utils.tensorboard, which imports TensorFlow whenever it is installed
# (+5 s here). It is installed in this venv only for tfa_suite; SB3's own environment has
# no TensorFlow, so its stand-in is used, as there.
if "--allow_tensorflow" not in sys.argv:
    sys.modules["tensorflow"] = None  # type: ignore[assignment]

import numpy as np
from sb3_harness import EvaluateUntilSolved, add_flags, report, set_torch_threads
from stable_baselines3 import DDPG, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.noise import NormalActionNoise

IMPORTS_DONE = time.monotonic()

ENV_ID = "Pendulum-v1"
ALGOS: dict[str, type[BaseAlgorithm]] = {"sac": SAC, "td3": TD3, "ddpg": DDPG}
# rl-baselines3-zoo hyperparams/{sac,td3,ddpg}.yml, Pendulum-v1 (policy 'MlpPolicy'); what
# is not listed is SB3's default for the algorithm. sac.yml: n_timesteps 20000,
# learning_rate 1e-3. td3.yml and ddpg.yml (identical entries): n_timesteps 20000, gamma
# 0.98, buffer_size 200000, learning_starts 10000, noise_type 'normal', noise_std 0.1,
# gradient_steps 1, train_freq 1, learning_rate 1e-3, policy_kwargs
# "dict(net_arch=[400, 300])". Checked against a copy of the zoo's current yml files (the
# gymnasium era, MuJoCo -v4 entries; fork michelled01/rl-final-project). The zoo's older
# Pendulum entries (Pendulum-v0, and Pendulum-v1 up to rl-zoo3 1.7) instead had
# gradient_steps -1 with train_freq [1, "episode"]: as many gradient steps, taken per
# episode rather than per step. The zoo turns noise_type 'normal' into
# NormalActionNoise(mean=0, sigma=noise_std) per action dimension; SB3 adds it to the
# actions scaled to [-1, 1].
RL_ZOO_N_TIMESTEPS = 20_000
_TD3_DDPG: dict[str, Any] = {
    "gamma": 0.98,
    "buffer_size": 200_000,
    "learning_starts": 10_000,
    "noise_type": "normal",
    "noise_std": 0.1,
    "gradient_steps": 1,
    "train_freq": 1,
    "learning_rate": 1e-3,
    "policy_kwargs": {"net_arch": [400, 300]},
}
RL_ZOO_HYPERPARAMS: dict[str, dict[str, Any]] = {
    "sac": {"learning_rate": 1e-3},
    "td3": _TD3_DDPG,
    "ddpg": _TD3_DDPG,
}


def model_kwargs(algo: str, n_actions: int) -> dict[str, Any]:
    """The zoo's hyperparameters as SB3 constructor arguments (noise_* -> action_noise).

    A deep copy: DDPG adds n_critics=1 to the policy_kwargs it is given."""
    kwargs = copy.deepcopy(RL_ZOO_HYPERPARAMS[algo])
    noise_type, noise_std = kwargs.pop("noise_type", None), kwargs.pop("noise_std", None)
    if noise_type is not None:
        assert noise_type == "normal", noise_type
        kwargs["action_noise"] = NormalActionNoise(
            mean=np.zeros(n_actions), sigma=noise_std * np.ones(n_actions)
        )
    return kwargs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--algo", choices=sorted(ALGOS), default="sac")
    add_flags(parser, eval_interval=1000, target=-200.0, max_env_steps=60_000, torch_threads=1)
    args = parser.parse_args()
    set_torch_threads(args)
    env = make_vec_env(ENV_ID, n_envs=1, seed=args.seed)
    n_actions = int(np.prod(env.action_space.shape))
    model = ALGOS[args.algo](
        "MlpPolicy",
        env,
        seed=args.seed,
        device="cpu",
        verbose=0,
        **model_kwargs(args.algo, n_actions),
    )
    callback = EvaluateUntilSolved(args, env_id=ENV_ID, process_start=PROCESS_START)
    # RL-Zoo's run first, then the extension (no schedule spans the steps: constant rates).
    model.learn(total_timesteps=min(RL_ZOO_N_TIMESTEPS, args.max_env_steps), callback=callback)
    remaining = args.max_env_steps - model.num_timesteps
    if callback.solved_at is None and remaining > 0:
        model.learn(total_timesteps=remaining, callback=callback, reset_num_timesteps=False)
    callback.maybe_evaluate()
    report(
        args,
        model,
        callback,
        about={
            "system": f"stable-baselines3 {args.algo.upper()}, RL-Zoo Pendulum-v1 hyperparameters",
            "algo": args.algo,
            "hyperparameters": RL_ZOO_HYPERPARAMS[args.algo],
        },
        train_steps=model._n_updates,
        process_start=PROCESS_START,
        imports_done=IMPORTS_DONE,
    )


if __name__ == "__main__":
    main()
