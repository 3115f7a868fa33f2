"""`train(config)`: the one training entry point for the binaries, the Python API, the
tests and the benchmarks.

`build` (`tfa_suite.run.build`) constructs everything a run needs and writes nothing, so
every input error is reported before the root dir is touched; `Session`
(`tfa_suite.run.session`) then runs it.
"""

from __future__ import annotations

import dataclasses
import math
import random
import time

import numpy as np
import tensorflow as tf

from tfa_suite.config import TrainConfig, validate
from tfa_suite.envs import training_env
from tfa_suite.envs.loading import EnvSpec, env_spec, reward_threshold
from tfa_suite.precision import graph_precision
from tfa_suite.run.build import Parts, build
from tfa_suite.run.outputs import TrainResult, finished_result
from tfa_suite.run.run_dir import RunDir
from tfa_suite.run.session import EvaluationHook, Session, TrainingDiverged

__all__ = ["EvaluationHook", "Parts", "TrainingDiverged", "build", "resolve_config", "train"]


def resolve_config(config: TrainConfig) -> TrainConfig:
    """Validates `config` and fills in what defaults to the run itself (the root dir)."""
    validate(config)
    if not config.run.root_dir:
        config = dataclasses.replace(
            config, run=dataclasses.replace(config.run, root_dir=config.default_root_dir())
        )
    return config


def target_return(config: TrainConfig, spec: EnvSpec) -> float | None:
    """--target_return, or the env's registered reward_threshold when it is NaN."""
    target = config.run.target_return
    if math.isnan(target):
        return reward_threshold(spec)
    return target


def seed_everything(seed: int) -> None:
    tf.random.set_seed(seed)
    np.random.seed(seed)
    # Keras initializers without a seed (DDPG's and TD3's actor, the critics'
    # glorot_uniform) draw one from Python's `random`; DQN's TF-Agents defaults do not.
    random.seed(seed)


def train(config: TrainConfig, on_evaluation: EvaluationHook | None = None) -> TrainResult:
    """Trains, evaluates and exports one run under `config.run.root_dir`; resumes if it can.

    Everything that can be wrong with the input (env id, spaces, flags, root dir) is
    checked before the root dir is touched, and reported as a UserError. SIGINT and
    SIGTERM checkpoint and return early, with `stopped_by_signal` set.
    `on_evaluation(env_steps, mean_return)`, if given, hears each evaluation as it
    happens; a reason it returns stops the run the same way, with `stopped_early` set to
    it (a tuner's pruner); without it, nothing changes.
    """
    start_time = time.monotonic()
    config = resolve_config(config)
    run = config.run
    with graph_precision(run.mixed_precision):
        spec = env_spec(run)
        target = target_return(config, spec)
        if run.stop_at_threshold and target is None and run.eval_interval:
            print(
                f"note: {run.env} registers no reward_threshold and --target_return is "
                "unset, so training runs for the full --num_env_steps"
            )
        training_env.warn_if_unbounded(spec)
        seed_everything(run.seed)
        parts = build(config)
        session = Session(parts, target, start_time, on_evaluation)
        try:
            finished = finished_result(RunDir(run.root_dir), config)  # reads only
            if finished is None:
                # The processes a loop needs (Ray and its actors) start before the run dir
                # is opened, so their errors ("use fewer actors") leave it untouched; a run
                # that is already complete needs none.
                parts.loop.start()
            return session.run(finished)
        finally:
            parts.loop.close()  # a loop's processes (Ray actors) end with the run
