"""Environments: gymnasium envs as TF-Agents environments, and TF-native envs for the
fully compiled loop."""

from tfa_suite.envs.loading import EnvSpec, make_gym_env, parse_env_kwargs, reward_threshold
from tfa_suite.envs.training_env import make_tf_eval_env, make_train_env

__all__ = [
    "EnvSpec",
    "make_gym_env",
    "make_tf_eval_env",
    "make_train_env",
    "parse_env_kwargs",
    "reward_threshold",
]
