"""What the policy-gradient agents share: the config section every one of them has, the
actor and value networks (with TF-Agents' heads and the in-graph preprocessing), the
optimizer and the linear learning-rate decay.

The agents: REINFORCE (`reinforce.py`), A2C and PPO (`ppo.py`), all on the rollout loop.
Greedy evaluation and the export take the action distribution's mode, through
`GreedyPolicy`, which clips continuous actions to the action bounds (TF-Agents builds its
PPO policies with `clip=False`; collection keeps the unclipped samples, whose log
probabilities the loss needs, and the env clips what it is given).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import ClassVar

import numpy as np
import tensorflow as tf
from tf_agents.networks import (
    actor_distribution_network,
    normal_projection_network,
    value_network,
)

from tfa_suite.agents.encoding import OneHotObservation, check_one_hot_width, is_discrete
from tfa_suite.agents.interface import AgentContext, describe_spec
from tfa_suite.agents.policy_gradient.preprocessing import observation_preprocessing
from tfa_suite.config import RunConfig, Section, _field, need, parse_layers
from tfa_suite.errors import UnsupportedSpaceError, UserError

ACTIVATIONS = {"tanh": tf.keras.activations.tanh, "relu": tf.keras.activations.relu}
LEARNING_RATE_DECAYS = ("constant", "linear")


@dataclasses.dataclass
class PolicyGradientConfig(Section):
    """What every policy-gradient agent has: the actor, its optimizer and the discount."""

    actor_layers: list[int] = _field([64, 64], "hidden layer sizes of the policy network")
    activation: str = _field("tanh", "hidden-layer activation: tanh or relu")
    observation_preprocessing: str = _field(
        "",
        "in-graph layer before the networks: empty for none, or pong_diff (crop, "
        "downsample to 80x80, erase the background, binarize, difference of two frames)",
    )
    optimizer: str = _field("adam", "adam, or rmsprop")
    learning_rate: float = _field(1e-3, "learning rate")
    learning_rate_decay: str = _field(
        "constant",
        "constant, or linear: to 0 at --num_env_steps (SB3's linear schedule; extending a "
        "run with a larger --num_env_steps stretches the rest of the decay to the new end)",
    )
    optimizer_epsilon: float = _field(1e-5, "epsilon of the optimizer's denominator")
    rmsprop_decay: float = _field(0.99, "rmsprop: decay of the squared-gradient average")
    gamma: float = _field(0.99, "discount factor")
    entropy_coef: float = _field(0.0, "weight of the entropy bonus in the loss")
    gradient_clipping: float = _field(0.0, "clip gradients to this global norm; 0 is off")
    init_action_std: float = _field(
        0.35,
        "continuous actions: the Gaussian policy's initial standard deviation, in action "
        "units (TF-Agents' default 0.35; SB3 starts at 1)",
    )
    export_sampled_policy: bool = _field(
        False,
        "also export the policy that samples its actions (the one that collects) to "
        "policy_sampled/ beside the greedy policy/; evaluate.py plays either",
    )
    squash_action_mean: bool = _field(
        True,
        "continuous actions: squash the Gaussian's mean into the action bounds with tanh "
        "(TF-Agents' default); false: a linear mean, the env clipping what it is given, "
        "as SB3 does",
    )

    # What to export is not part of the experiment: a rerun may ask for it when it resumes.
    RESUMABLE: ClassVar[frozenset[str]] = frozenset({"export_sampled_policy"})

    def validate(self, run: RunConfig) -> None:
        parse_layers("actor_layers", self.actor_layers)
        need(
            self.activation in ACTIVATIONS,
            f"--activation must be tanh or relu, not {self.activation!r}",
        )
        need(self.optimizer in ("adam", "rmsprop"), "--optimizer must be adam or rmsprop")
        need(self.learning_rate > 0, "--learning_rate must be > 0")
        need(
            self.learning_rate_decay in LEARNING_RATE_DECAYS,
            f"--learning_rate_decay must be constant or linear, not {self.learning_rate_decay!r}",
        )
        need(self.optimizer_epsilon > 0, "--optimizer_epsilon must be > 0")
        need(0.0 < self.rmsprop_decay < 1.0, "--rmsprop_decay must be in (0, 1)")
        need(0.0 <= self.gamma <= 1.0, "--gamma must be in [0, 1]")
        need(self.entropy_coef >= 0, "--entropy_coef must be >= 0")
        need(self.gradient_clipping >= 0, "--gradient_clipping must be >= 0 (0 is off)")
        need(
            math.isfinite(self.init_action_std) and self.init_action_std > 0,
            "--init_action_std must be finite and > 0",
        )


# --- networks and optimizer ---------------------------------------------------------------


def _preprocessing(cfg: PolicyGradientConfig, context: AgentContext):  # noqa: ANN202
    """A fresh instance per network (Keras layers belong to one network)."""
    if not cfg.observation_preprocessing:
        observation = context.time_step_spec.observation
        if is_discrete(observation):
            check_one_hot_width(observation)
            return OneHotObservation.for_spec(observation)
        if not isinstance(observation, tf.TensorSpec) or observation.shape.rank != 1:
            raise UnsupportedSpaceError(
                "the policy-gradient networks take a flat vector observation (a 1-D Box) "
                "or a Discrete / MultiDiscrete one; the env's observations are "
                f"{describe_spec(observation)}. For Pong frames use "
                "--observation_preprocessing=pong_diff"
            )
        return None
    return observation_preprocessing(
        cfg.observation_preprocessing, context.time_step_spec.observation
    )


def _gaussian_head(spec, init_std: float, squash: bool):  # noqa: ANN001, ANN202
    # TF-Agents' own continuous head (actor_distribution_network._normal_projection_net)
    # with its initial std and tanh-squashed mean made choices: a tanh mean saturates
    # towards the bounds, where bang-bang control such as Pendulum's swing-up wants it.
    return normal_projection_network.NormalProjectionNetwork(
        spec,
        init_means_output_factor=0.1,
        std_bias_initializer_value=np.log(np.exp(init_std) - 1),  # softplus^-1, as TF-Agents
        mean_transform=normal_projection_network.tanh_squash_to_spec if squash else None,
        scale_distribution=False,
    )


def actor_net(cfg: PolicyGradientConfig, context: AgentContext):  # noqa: ANN201
    defaults = PolicyGradientConfig()
    custom = (cfg.init_action_std, cfg.squash_action_mean) != (
        defaults.init_action_std,
        defaults.squash_action_mean,
    )
    if custom and not context.action_spec.dtype.is_floating:
        raise UserError(
            "--init_action_std and --squash_action_mean apply only to continuous actions; "
            "this env's actions are discrete"
        )
    head = functools.partial(
        _gaussian_head, init_std=cfg.init_action_std, squash=cfg.squash_action_mean
    )
    return actor_distribution_network.ActorDistributionNetwork(
        context.time_step_spec.observation,
        context.action_spec,
        preprocessing_layers=_preprocessing(cfg, context),
        fc_layer_params=tuple(cfg.actor_layers),
        activation_fn=ACTIVATIONS[cfg.activation],
        continuous_projection_net=head,
    )


def value_net(cfg: PolicyGradientConfig, value_layers: list[int], context: AgentContext):  # noqa: ANN201
    return value_network.ValueNetwork(
        context.time_step_spec.observation,
        preprocessing_layers=_preprocessing(cfg, context),
        fc_layer_params=tuple(value_layers),
        activation_fn=ACTIVATIONS[cfg.activation],
    )


class LinearDecay(tf.keras.optimizers.schedules.LearningRateSchedule):
    """A rate falling linearly to 0 at the run's last env step, as SB3's linear schedule.

    It reads the run's env-step counter, not the optimizer's step, so the rate is the
    same for any number of epochs and minibatches, and it resumes with the counter.
    (A plain zero-argument callable would not do: Keras 2 optimizers turn it into a
    variable holding its first value.)
    """

    def __init__(self, start: float, env_steps, total_env_steps: int):  # noqa: ANN001
        self.start, self.env_steps, self.total = start, env_steps, float(total_env_steps)

    def __call__(self, step: tf.Tensor) -> tf.Tensor:
        del step  # the optimizer's own count of updates
        progress = tf.cast(self.env_steps.result(), tf.float32) / self.total
        return self.start * tf.maximum(1.0 - progress, 0.0)

    def get_config(self) -> dict:
        return {"start": self.start, "total_env_steps": self.total}


def _learning_rate(cfg: PolicyGradientConfig, context: AgentContext):  # noqa: ANN202
    if cfg.learning_rate_decay == "constant":
        return cfg.learning_rate
    return LinearDecay(cfg.learning_rate, context.env_steps, context.num_env_steps)


def make_optimizer(cfg: PolicyGradientConfig, context: AgentContext):  # noqa: ANN201
    rate = _learning_rate(cfg, context)
    if cfg.optimizer == "rmsprop":
        return tf.keras.optimizers.RMSprop(
            learning_rate=rate, rho=cfg.rmsprop_decay, epsilon=cfg.optimizer_epsilon
        )
    return tf.keras.optimizers.Adam(learning_rate=rate, epsilon=cfg.optimizer_epsilon)


def learning_rate_scalars(optimizer: tf.keras.optimizers.Optimizer) -> dict:
    schedule = optimizer._learning_rate  # noqa: SLF001  (`.learning_rate` is its last value)
    if not isinstance(schedule, LinearDecay):
        return {}
    return {"learning_rate": lambda: schedule(optimizer.iterations)}
