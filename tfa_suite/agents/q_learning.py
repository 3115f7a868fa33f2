"""What the Q-learning agents share: DQN's and C51's config fields, network torso and
optimizers, the epsilon-greedy schedule (tabular Q-learning's too) and Ape-X's per-actor
epsilons.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

import tensorflow as tf
from tf_agents.policies import epsilon_greedy_policy

from tfa_suite.agents.encoding import OneHotObservation, check_one_hot_width, is_discrete
from tfa_suite.agents.interface import AgentContext, BuiltAgent, ReplayHooks, describe_spec
from tfa_suite.agents.optimizer_slots import create_optimizer_slots
from tfa_suite.config import RunConfig, Section, _field, need, parse_conv_layers
from tfa_suite.errors import UnsupportedSpaceError


@dataclasses.dataclass
class QLearningConfig(Section):
    # --- network and optimizer ---
    conv_layers: str = _field(
        "",
        "convolutions for image observations as filters:kernel:stride,...; "
        "nature = 32:8:4,64:4:2,64:3:1 (Mnih et al. 2015)",
    )
    fc_layers: list[int] = _field([256, 256], "hidden layer sizes of the Q-network")
    optimizer: str = _field("adam", "adam, or rmsprop (centered, as in Mnih et al. 2015)")
    optimizer_epsilon: float = _field(1e-7, "epsilon of the optimizer's denominator")
    learning_rate: float = _field(1e-3, "learning rate")
    # --- targets ---
    gamma: float = _field(0.99, "discount factor")
    n_step: int = _field(1, "n-step TD targets")
    gradient_clipping: float = _field(0.0, "clip gradients to this global norm; 0 is off")
    target_update_period: int = _field(1000, "train steps between target network updates")
    target_update_tau: float = _field(1.0, "target update weight; 1 copies, < 1 is Polyak")
    # --- exploration ---
    epsilon_start: float = _field(1.0, "epsilon-greedy epsilon at env step 0")
    epsilon_end: float = _field(0.05, "epsilon after the decay")
    epsilon_decay_steps: int = _field(10_000, "env steps of linear decay from start to end")
    # --- per-actor exploration (--num_actors with --actor_exploration=apex) ---
    actor_epsilon: float = _field(
        0.4,
        "Ape-X per-actor exploration: actor i of N collects with the fixed epsilon "
        "actor_epsilon ** (1 + actor_epsilon_alpha * i / (N - 1))",
    )
    actor_epsilon_alpha: float = _field(7.0, "Ape-X per-actor exploration: the exponent's spread")

    def validate(self, run: RunConfig) -> None:
        need(len(self.fc_layers) > 0, "--fc_layers needs at least one layer size")
        need(all(n > 0 for n in self.fc_layers), f"--fc_layers sizes must be > 0: {self.fc_layers}")
        parse_conv_layers(self.conv_layers)  # raises a UserError naming --conv_layers
        need(self.optimizer in ("adam", "rmsprop"), "--optimizer must be adam or rmsprop")
        need(self.optimizer_epsilon > 0, "--optimizer_epsilon must be > 0")
        need(self.learning_rate > 0, "--learning_rate must be > 0")
        need(0.0 <= self.gamma <= 1.0, "--gamma must be in [0, 1]")
        need(self.n_step >= 1, "--n_step must be >= 1")
        need(self.gradient_clipping >= 0, "--gradient_clipping must be >= 0 (0 is off)")
        need(self.target_update_period >= 1, "--target_update_period must be >= 1")
        need(0.0 < self.target_update_tau <= 1.0, "--target_update_tau must be in (0, 1]")
        for name in ("epsilon_start", "epsilon_end"):
            need(0.0 <= getattr(self, name) <= 1.0, f"--{name} must be in [0, 1]")
        need(self.epsilon_decay_steps >= 0, "--epsilon_decay_steps must be >= 0")
        need(0.0 <= self.actor_epsilon <= 1.0, "--actor_epsilon must be in [0, 1]")
        need(self.actor_epsilon_alpha >= 0, "--actor_epsilon_alpha must be >= 0")


class EpsilonFields(Protocol):
    """The epsilon-greedy schedule's fields, which every epsilon-greedy section has."""

    epsilon_start: float
    epsilon_end: float
    epsilon_decay_steps: int


def check_observation_spec(observation_spec: tf.TensorSpec) -> None:
    if is_discrete(observation_spec):
        check_one_hot_width(observation_spec)
        return
    if not isinstance(observation_spec, tf.TensorSpec) or observation_spec.shape.rank < 1:
        raise UnsupportedSpaceError(
            "Q-learning needs an array (Box) or a Discrete / MultiDiscrete observation "
            f"space, but the env's observation spec is {describe_spec(observation_spec)}"
        )


def linear_epsilon(config: EpsilonFields, context: AgentContext):  # noqa: ANN201
    """Epsilon as a function of env steps, read each time the collect policy acts.

    The schedule's position is the env step counter itself, which the checkpoint holds,
    so a resumed run continues the schedule where it stopped.
    During the loop's initial collection epsilon is 1: the epsilon-greedy policy is then
    exactly the uniform-random policy, so it serves as the initial-collect policy too and
    one compiled function serves both phases.
    """
    start, end = config.epsilon_start, config.epsilon_end
    decay = float(max(config.epsilon_decay_steps, 1))
    initial = context.initial_collect_steps
    env_steps = context.env_steps

    def epsilon() -> tf.Tensor:
        steps = env_steps.result()
        frac = tf.minimum(tf.cast(steps, tf.float32) / decay, 1.0)
        return tf.where(steps < initial, 1.0, start + (end - start) * frac)

    return epsilon


def observation_preprocessing(observation_spec: tf.TensorSpec) -> tf.keras.layers.Layer:
    """Casts observations to float inside the network; uint8 images are scaled to [0, 1];
    a Discrete or MultiDiscrete observation becomes one-hot (`encoding.OneHotObservation`).

    Scaling inside the network lets replay and environments keep one byte per pixel.
    """
    if is_discrete(observation_spec):
        return OneHotObservation.for_spec(observation_spec)
    if observation_spec.dtype == tf.uint8:
        return tf.keras.layers.Lambda(lambda x: tf.cast(x, tf.float32) / 255.0)
    return tf.keras.layers.Lambda(lambda x: tf.cast(x, tf.float32))


def make_optimizer(config: QLearningConfig) -> tf.keras.optimizers.Optimizer:
    if config.optimizer == "rmsprop":
        return tf.keras.optimizers.RMSprop(
            learning_rate=config.learning_rate,
            rho=0.95,
            momentum=0.0,
            epsilon=config.optimizer_epsilon,
            centered=True,
        )
    return tf.keras.optimizers.Adam(
        learning_rate=config.learning_rate, epsilon=config.optimizer_epsilon
    )


def network_kwargs(config: QLearningConfig, observation_spec: tf.TensorSpec) -> dict:
    """The torso shared by DQN's QNetwork and C51's CategoricalQNetwork."""
    return dict(
        preprocessing_layers=observation_preprocessing(observation_spec),
        conv_layer_params=parse_conv_layers(config.conv_layers) or None,
        fc_layer_params=tuple(config.fc_layers),
    )


def agent_kwargs(config: QLearningConfig, context: AgentContext, epsilon) -> dict:  # noqa: ANN001
    """Optimizer, exploration, target-update and return settings shared by DQN and C51."""
    return dict(
        optimizer=make_optimizer(config),
        epsilon_greedy=epsilon,
        n_step_update=config.n_step,
        target_update_tau=config.target_update_tau,
        target_update_period=config.target_update_period,
        gamma=config.gamma,
        gradient_clipping=config.gradient_clipping or None,
        train_step_counter=context.train_step,
    )


def apex_epsilon(base: float, alpha: float, index: int, count: int) -> float:
    """Ape-X's (Horgan et al. 2018) epsilon of actor `index` of `count`: base^(1 + alpha i/(N-1)).

    With the paper's base 0.4 and alpha 7, 8 actors range from 0.4 down to 0.4^8 = 0.00066.
    A single actor gets `base`.
    """
    spread = index / (count - 1) if count > 1 else 0.0
    return float(base ** (1.0 + alpha * spread))


def built_q_agent(agent, config: QLearningConfig, epsilon, sample_errors=None) -> BuiltAgent:  # noqa: ANN001
    """DQN and C51 collect epsilon-greedily (epsilon 1 at first) and export the greedy policy."""
    agent.initialize()
    # DqnAgent (and C51's) trains the Q-network's trainable weights, in this order.
    create_optimizer_slots(agent._optimizer, agent._q_network.trainable_weights)  # noqa: SLF001

    def actor_collect_policy(index: int, count: int):  # noqa: ANN202
        value = apex_epsilon(config.actor_epsilon, config.actor_epsilon_alpha, index, count)
        policy = epsilon_greedy_policy.EpsilonGreedyPolicy(agent.policy, epsilon=value)
        return policy, f"epsilon {value:.3g} (Ape-X)"

    return BuiltAgent(
        agent=agent,
        collect_policy=agent.collect_policy,
        greedy_policy=agent.policy,
        initial_collect_policy=agent.collect_policy,
        hooks=ReplayHooks(
            train_sequence_length=config.n_step + 1,
            sample_errors=sample_errors,
            actor_collect_policy=actor_collect_policy,
        ),
        scalars={"epsilon": epsilon},
    )
