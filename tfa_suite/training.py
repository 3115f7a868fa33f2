"""`train(config)`: the one training entry point for binaries, tests and benchmarks.

`build()` constructs everything a run needs (env, agent, loop, evaluator) and writes
nothing, so every input error is reported before the root dir is touched; `Session`
(`tfa_suite.session`) then runs it.
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
from typing import Any

import numpy as np
import tensorflow as tf
from tf_agents.metrics import tf_metrics

from tfa_suite import agents, envs, loops
from tfa_suite.agents.registry import AgentContext, BuiltAgent
from tfa_suite.config import EVAL_SEED_OFFSET, TrainConfig, validate
from tfa_suite.envs import training_env
from tfa_suite.graph_eval import GraphEvaluator
from tfa_suite.precision import graph_precision
from tfa_suite.run_dir import RunDir
from tfa_suite.run_outputs import TrainResult, finished_result
from tfa_suite.session import Session, TrainingDiverged

__all__ = ["EVAL_SEED_OFFSET", "Parts", "TrainingDiverged", "build", "resolve_config", "train"]



def training_device() -> str:
    """The first GPU when TensorFlow sees one, else the CPU."""
    return "/GPU:0" if tf.config.list_logical_devices("GPU") else "/CPU:0"


def resolve_config(config: TrainConfig) -> TrainConfig:
    validate(config)
    if not config.run.root_dir:
        config = dataclasses.replace(
            config, run=dataclasses.replace(config.run, root_dir=config.default_root_dir())
        )
    return config


def env_spec(config: TrainConfig) -> envs.EnvSpec:
    run = config.run
    return envs.EnvSpec(run.env, envs.parse_env_kwargs(run.env_kwargs), run.max_episode_steps)


@dataclasses.dataclass
class Parts:
    """The live objects of a run, before any file is written."""

    config: TrainConfig
    tf_env: Any
    built: BuiltAgent
    loop: Any  # a loop of tfa_suite.loops
    backend: str
    device: str
    graph_evaluator: GraphEvaluator | None

    @property
    def agent(self) -> Any:
        return self.built.agent


def build(config: TrainConfig, spec: envs.EnvSpec) -> Parts:
    """Builds env, agent and compiled loop for a resolved config; writes nothing."""
    device = training_device()
    agent_spec = agents.agent_spec(config.run.agent)
    loop_spec = loops.loop_spec(agent_spec.loop)
    # Environment state, replay storage, networks and counters all live on one device, so
    # on a GPU the compiled loop (with a TF-native env) never copies through the host.
    with tf.device(device):
        tf_env, backend = training_env.make_train_env(config, spec)
        env_steps = tf_metrics.EnvironmentSteps()
        train_step = tf.Variable(0, dtype=tf.int64, name="train_step")
        context = AgentContext(
            time_step_spec=tf_env.time_step_spec(),
            action_spec=tf_env.action_spec(),
            train_step=train_step,
            env_steps=env_steps,
            # Only the replay loop collects before training; other loops start at once.
            initial_collect_steps=getattr(config.loop, "initial_collect_steps", 0),
            num_envs=tf_env.batch_size,
        )
        built = agents.build_agent(config, context)
        loop_cls = loop_spec.loop_cls
        if getattr(config.loop, "num_actors", 0) > 0:
            loop_cls = loop_spec.actor_loop_cls  # Ray actors collect: tfa_suite.loops.actors
        loop = loop_cls(config, tf_env, built, env_steps, device=device)
        eval_seed = config.run.eval_seed
        eval_env = training_env.make_tf_eval_env(config, spec, config.run.eval_episodes, eval_seed)
        graph_evaluator = (
            GraphEvaluator(
                eval_env, built.greedy_policy, eval_seed, config.run.eval_max_episode_steps
            )
            if eval_env is not None
            else None
        )
    return Parts(config, tf_env, built, loop, backend, device, graph_evaluator)


def train(config: TrainConfig) -> TrainResult:
    """Trains, evaluates and exports one run under `config.run.root_dir`; resumes if it can.

    Everything that can be wrong with the input (env id, spaces, flags, root dir) is
    checked before the root dir is touched, and reported as a UserError. SIGINT and
    SIGTERM checkpoint and return early, with `stopped_by_signal` set.
    """
    start_time = time.monotonic()
    config = resolve_config(config)
    with graph_precision(config.run.mixed_precision):
        spec = env_spec(config)
        target = config.run.target_return
        if math.isnan(target):
            target = envs.reward_threshold(spec)
        if config.run.stop_at_threshold and target is None and config.run.eval_interval:
            print(
                f"note: {config.run.env} registers no reward_threshold and --target_return is "
                "unset, so training runs for the full --num_env_steps"
            )
        training_env.warn_if_unbounded(spec)
        tf.random.set_seed(config.run.seed)
        np.random.seed(config.run.seed)
        # Keras initializers without a seed (DDPG's and TD3's actor, the critics'
        # glorot_uniform) draw one from Python's `random`; DQN's TF-Agents defaults do not.
        random.seed(config.run.seed)
        parts = build(config, spec)
        session = Session(parts, spec, target, config.run.eval_seed, start_time)
        try:
            start = getattr(parts.loop, "start", None)
            done = finished_result(RunDir(config.run.root_dir), config)  # reads only
            if start is not None and done is None:
                # The processes a loop needs (Ray and its actors) start before the run dir
                # is opened, so their errors ("use fewer actors") leave it untouched; a run
                # that is already complete needs none.
                start()
            return session.run()
        finally:
            close = getattr(parts.loop, "close", None)
            if close is not None:
                close()  # a loop's processes (Ray actors) end with the run, whatever happened
