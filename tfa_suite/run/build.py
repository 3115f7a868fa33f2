"""`build(config)`: every live object a run needs (env, agent, loop, evaluator), no file.

It constructs everything and writes nothing, so every input error (env id, spaces,
flags) is reported before the root dir is touched. The session (`tfa_suite.run.session`)
then runs the parts.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import tensorflow as tf
from tf_agents.environments import tf_environment
from tf_agents.metrics import tf_metrics

from tfa_suite import catalog
from tfa_suite.agents.interface import AgentContext, BuiltAgent
from tfa_suite.config import TrainConfig
from tfa_suite.envs import training_env
from tfa_suite.envs.loading import EnvSpec, env_spec
from tfa_suite.loops.base import Loop, LoopInputs
from tfa_suite.loops.ray.worker import ActorRecipe, CollectorParts
from tfa_suite.run.graph_eval import GraphEvaluator


def training_device() -> str:
    """The first GPU when TensorFlow sees one, else the CPU."""
    return "/GPU:0" if tf.config.list_logical_devices("GPU") else "/CPU:0"


@dataclasses.dataclass
class Parts:
    """The live objects of a run, before any file is written."""

    config: TrainConfig
    spec: EnvSpec  # the environment, as `config.run` names it
    tf_env: tf_environment.TFEnvironment
    built: BuiltAgent
    loop: Loop
    backend: str
    device: str
    graph_evaluator: GraphEvaluator | None

    @property
    def agent(self) -> Any:
        return self.built.agent


def _context(
    config: TrainConfig,
    tf_env: tf_environment.TFEnvironment,
    env_steps: tf_metrics.EnvironmentSteps,
) -> AgentContext:
    return AgentContext(
        time_step_spec=tf_env.time_step_spec(),
        action_spec=tf_env.action_spec(),
        train_step=tf.Variable(0, dtype=tf.int64, name="train_step"),
        env_steps=env_steps,
        # Only a loop that collects before training (the replay loop) has initial steps.
        initial_collect_steps=config.loop.steps_before_training(),
        num_envs=tf_env.batch_size,
    )


def build(config: TrainConfig) -> Parts:
    """Builds env, agent, compiled loop and evaluator for a resolved config; writes nothing."""
    run = config.run
    spec = env_spec(run)
    device = training_device()
    # Environment state, replay storage, networks and counters all live on one device, so
    # on a GPU the compiled loop (with a TF-native env) never copies through the host.
    with tf.device(device):
        tf_env, backend = training_env.make_train_env(run, spec)
        env_steps = tf_metrics.EnvironmentSteps()
        built = catalog.build_agent(config, _context(config, tf_env, env_steps))
        inputs = LoopInputs(tf_env, built, env_steps, device, run.num_env_steps, run.agent)
        recipe = ActorRecipe(config.to_json(), collector_parts, run.seed, run.num_envs)
        loop = catalog.build_loop(config, inputs, recipe)
        eval_env = training_env.make_tf_eval_env(run, spec, run.eval_episodes, run.eval_seed)
        graph_evaluator = None
        if eval_env is not None:
            graph_evaluator = GraphEvaluator(
                eval_env, built.greedy_policy, run.eval_seed, run.eval_max_episode_steps
            )
    return Parts(config, spec, tf_env, built, loop, backend, device, graph_evaluator)


def collector_parts(config_json: dict[str, Any], seed: int) -> CollectorParts:
    """What a Ray actor collects with, built in the actor's process as `build` builds it:
    the run's env (with the actor's own seed) and agent, on the CPU."""
    config = catalog.config_from_json(config_json).replace(seed=seed)
    with tf.device("/CPU:0"):
        env, backend = training_env.make_train_env(config.run, env_spec(config.run))
        # Schedules (DQN's epsilon) read this; each collect call sets it to the learner's.
        env_steps = tf_metrics.EnvironmentSteps()
        built = catalog.build_agent(config, _context(config, env, env_steps))
    return CollectorParts(env, backend, built, env_steps)
