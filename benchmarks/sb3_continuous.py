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
import json
import sys
from importlib import metadata
from typing import Any

# SB3 imports torch.utils.tensorboard, which imports TensorFlow whenever it is installed
# (+5 s here). It is installed in this venv only for tfa_suite; SB3's own environment has
# no TensorFlow, so its stand-in is used, as there.
if "--allow_tensorflow" not in sys.argv:
    sys.modules["tensorflow"] = None  # type: ignore[assignment]

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import DDPG, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
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


def greedy_mean_return(model: BaseAlgorithm, episodes: int, seed: int) -> float:
    """Plays `episodes` greedy episodes in lockstep, one batched predict per time step."""
    envs = [gym.make(ENV_ID) for _ in range(episodes)]
    obs = [env.reset(seed=seed + i)[0] for i, env in enumerate(envs)]
    returns = np.zeros(episodes)
    live = np.ones(episodes, dtype=bool)
    while live.any():
        idx = np.flatnonzero(live)
        actions, _ = model.predict(np.stack([obs[i] for i in idx]), deterministic=True)
        for i, action in zip(idx, actions, strict=True):
            obs[i], reward, terminated, truncated, _ = envs[i].step(action)
            returns[i] += float(reward)
            live[i] = not (terminated or truncated)
    for env in envs:
        env.close()
    return float(returns.mean())


class EvaluateUntilSolved(BaseCallback):
    """Evaluates every `interval` env steps and stops training once the target is met."""

    def __init__(self, interval: int, episodes: int, seed: int, target: float) -> None:
        super().__init__()
        self.interval, self.episodes, self.seed, self.target = interval, episodes, seed, target
        self.next_eval = interval
        self.evaluations: list[dict[str, float]] = []
        self.solved_at: tuple[int, int, float] | None = None  # env steps, grad steps, s
        self.eval_seconds = 0.0

    def maybe_evaluate(self) -> None:
        steps = self.model.num_timesteps
        if self.solved_at is not None or steps < self.next_eval:
            return
        self.next_eval = (steps // self.interval + 1) * self.interval
        start = time.monotonic()
        mean = greedy_mean_return(self.model, self.episodes, self.seed)
        self.eval_seconds += time.monotonic() - start
        seconds = time.monotonic() - PROCESS_START
        self.evaluations.append({"env_steps": steps, "mean": mean, "wall_seconds": seconds})
        print(f"eval @ {steps:,} env steps ({seconds:.1f} s): return {mean:.1f}", flush=True)
        if mean >= self.target:
            self.solved_at = (steps, self.model._n_updates, seconds)

    def _on_rollout_start(self) -> None:
        # Runs right after the previous rollout's gradient steps: the trained policy.
        self.maybe_evaluate()

    def _on_step(self) -> bool:
        return self.solved_at is None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--algo", choices=sorted(ALGOS), default="sac")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval_interval", type=int, default=1000)
    parser.add_argument("--eval_episodes", type=int, default=10)
    parser.add_argument("--eval_seed_offset", type=int, default=1_000_003)
    parser.add_argument("--target", type=float, default=-200.0)
    parser.add_argument("--max_env_steps", type=int, default=60_000)
    parser.add_argument("--out", default="", help="also write the result JSON here")
    parser.add_argument("--torch_threads", type=int, default=1, help="0 keeps torch's default")
    parser.add_argument(
        "--allow_tensorflow",
        action="store_true",
        help="let torch.utils.tensorboard import TensorFlow (slower start)",
    )
    args = parser.parse_args()
    if args.torch_threads > 0:
        torch.set_num_threads(args.torch_threads)
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
    callback = EvaluateUntilSolved(
        args.eval_interval, args.eval_episodes, args.seed + args.eval_seed_offset, args.target
    )
    # RL-Zoo's run first, then the extension (no schedule spans the steps: constant rates).
    model.learn(total_timesteps=min(RL_ZOO_N_TIMESTEPS, args.max_env_steps), callback=callback)
    remaining = args.max_env_steps - model.num_timesteps
    if callback.solved_at is None and remaining > 0:
        model.learn(total_timesteps=remaining, callback=callback, reset_num_timesteps=False)
    callback.maybe_evaluate()
    solved = callback.solved_at
    result = {
        "system": f"stable-baselines3 {args.algo.upper()}, RL-Zoo Pendulum-v1 hyperparameters",
        "algo": args.algo,
        "hyperparameters": RL_ZOO_HYPERPARAMS[args.algo],
        "seed": args.seed,
        "target_return": args.target,
        "solved": solved is not None,
        "solved_at_env_steps": solved[0] if solved else None,
        "solved_at_train_steps": solved[1] if solved else None,
        "solved_at_seconds": solved[2] if solved else None,
        "env_steps": model.num_timesteps,
        "train_steps": model._n_updates,
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
