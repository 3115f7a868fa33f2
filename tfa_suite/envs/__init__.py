"""Environments: gymnasium envs as TF-Agents environments, and TF-native envs for the
fully compiled loop.

Only the gymnasium-level loading is imported here, so `experiments/evaluate.py` can use it
without TF-Agents; the TF-Agents adapters live in `gym_adapter`, `atari` and
`training_env`, and the TF-native environments of the fully compiled loop in `native`.
"""

from tfa_suite.envs.loading import (
    EnvSpec,
    env_spec,
    make_gym_env,
    parse_env_kwargs,
    reward_threshold,
)

__all__ = ["EnvSpec", "env_spec", "make_gym_env", "parse_env_kwargs", "reward_threshold"]
