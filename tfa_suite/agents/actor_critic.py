"""Off-policy actor-critic agents for continuous actions: DDPG, TD3 and SAC.

TF-Agents' `DdpgAgent`, `Td3Agent` and `SacAgent` on the replay loop. Noise scales are
fractions of the action range's half-width, as in Stable-Baselines3 and the TD3 paper
(which act in [-1, 1]): `--exploration_noise_std=0.1` on Pendulum's [-2, 2] torque is a
standard deviation of 0.2. TF-Agents' own noise arguments are in action units, so the
builders scale them.

- DDPG (Lillicrap et al. 2016): deterministic actor, one critic, Gaussian or OU noise.
- TD3 (Fujimoto et al. 2018): twin critics, delayed actor and target updates, target
  policy smoothing.
- SAC (Haarnoja et al. 2018): a tanh-squashed Gaussian actor, twin critics and a learned
  entropy temperature alpha. It explores with its own stochastic policy; the greedy
  policy (evaluated and exported) is the mode, through `GreedyPolicy`.

The initial collection is uniform random within the action bounds, as SB3's
`learning_starts` is.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import numpy as np
import tensorflow as tf
from tf_agents.agents.ddpg import actor_network, critic_network, ddpg_agent
from tf_agents.agents.sac import sac_agent, tanh_normal_projection_network
from tf_agents.agents.td3 import td3_agent
from tf_agents.networks import actor_distribution_network
from tf_agents.policies import greedy_policy, random_tf_policy

from tfa_suite.agents.interface import AgentContext, BuiltAgent, ReplayHooks, describe_spec
from tfa_suite.agents.noise import GAUSSIAN, ORNSTEIN_UHLENBECK, ActionNoisePolicy
from tfa_suite.agents.optimizer_slots import create_optimizer_slots, critic_variables
from tfa_suite.agents.registry import CONTINUOUS, AgentSpec, register_agent
from tfa_suite.config import (
    Choice,
    FloatRange,
    RunConfig,
    SearchParam,
    Section,
    _field,
    need,
    parse_layers,
)
from tfa_suite.errors import UnsupportedSpaceError

NOISE_KINDS = (GAUSSIAN, ORNSTEIN_UHLENBECK)


@dataclasses.dataclass
class ActorCriticConfig(Section):
    actor_layers: list[int] = _field([256, 256], "hidden layer sizes of the actor")
    critic_layers: list[int] = _field(
        [256, 256], "hidden layer sizes of the critic, after observation and action are joined"
    )
    critic_observation_layers: list[int] = _field(
        [], "critic layers for the observation alone, before the join (the course's DDPG: 400)"
    )
    actor_learning_rate: float = _field(3e-4, "Adam learning rate of the actor")
    critic_learning_rate: float = _field(3e-4, "Adam learning rate of the critic(s)")
    gamma: float = _field(0.99, "discount factor")
    target_update_tau: float = _field(0.005, "Polyak weight of the target networks' update")
    target_update_period: int = _field(1, "train steps between target network updates")
    reward_scale: float = _field(1.0, "rewards are multiplied by this in the TD targets")
    gradient_clipping: float = _field(0.0, "clip gradients to this global norm; 0 is off")

    def validate(self, run: RunConfig) -> None:
        parse_layers("actor_layers", self.actor_layers)
        parse_layers("critic_layers", self.critic_layers)
        parse_layers("critic_observation_layers", self.critic_observation_layers, allow_empty=True)
        for name in ("actor_learning_rate", "critic_learning_rate"):
            need(getattr(self, name) > 0, f"--{name} must be > 0")
        need(0.0 <= self.gamma <= 1.0, "--gamma must be in [0, 1]")
        need(0.0 < self.target_update_tau <= 1.0, "--target_update_tau must be in (0, 1]")
        need(self.target_update_period >= 1, "--target_update_period must be >= 1")
        need(
            math.isfinite(self.reward_scale) and self.reward_scale != 0,
            "--reward_scale must be finite and non-zero",
        )
        need(self.gradient_clipping >= 0, "--gradient_clipping must be >= 0 (0 is off)")


@dataclasses.dataclass
class DdpgConfig(ActorCriticConfig):
    # The RL-Zoo's Pendulum networks and rates; the course's DDPG used (400, 300) too.
    actor_layers: list[int] = _field([400, 300], "hidden layer sizes of the actor")
    critic_layers: list[int] = _field(
        [400, 300], "hidden layer sizes of the critic, after observation and action are joined"
    )
    actor_learning_rate: float = _field(1e-3, "Adam learning rate of the actor")
    critic_learning_rate: float = _field(1e-3, "Adam learning rate of the critic(s)")
    exploration_noise: str = _field(
        "gaussian", "collect noise: gaussian, or ou (Ornstein-Uhlenbeck)"
    )
    exploration_noise_std: float = _field(
        0.1,
        "std of each step's collect-noise draw, as a fraction of the action range's "
        "half-width (for ou, the process's driving noise)",
    )
    ou_damping: float = _field(0.15, "ou noise: pull back towards zero per step")

    def validate(self, run: RunConfig) -> None:
        super().validate(run)
        need(
            self.exploration_noise in NOISE_KINDS,
            f"--exploration_noise must be gaussian or ou, not {self.exploration_noise!r}",
        )
        need(self.exploration_noise_std >= 0, "--exploration_noise_std must be >= 0")
        need(0.0 <= self.ou_damping <= 1.0, "--ou_damping must be in [0, 1]")


@dataclasses.dataclass
class Td3Config(DdpgConfig):
    target_update_period: int = _field(2, "train steps between target network updates")
    actor_update_period: int = _field(2, "train steps between actor updates (the policy delay)")
    target_policy_noise: float = _field(
        0.2, "target policy smoothing noise std, as a fraction of the action half-width"
    )
    target_policy_noise_clip: float = _field(
        0.5, "clip of the smoothing noise, as a fraction of the action half-width"
    )

    def validate(self, run: RunConfig) -> None:
        super().validate(run)
        need(self.actor_update_period >= 1, "--actor_update_period must be >= 1")
        need(self.target_policy_noise >= 0, "--target_policy_noise must be >= 0")
        need(self.target_policy_noise_clip >= 0, "--target_policy_noise_clip must be >= 0")


@dataclasses.dataclass
class SacConfig(ActorCriticConfig):
    alpha_learning_rate: float = _field(3e-4, "Adam learning rate of the entropy temperature")
    initial_alpha: float = _field(1.0, "entropy temperature alpha at the start")
    target_entropy: float = _field(
        float("nan"), "entropy target of the alpha update; NaN is -(action dimensions)"
    )

    # What experiments/tune.py searches by default (batch_size is the replay loop's).
    SEARCH_SPACE: ClassVar[dict[str, SearchParam]] = {
        "actor_learning_rate": FloatRange(1e-4, 3e-3, log=True),
        "critic_learning_rate": FloatRange(1e-4, 3e-3, log=True),
        "gamma": Choice((0.95, 0.98, 0.99, 0.995)),
        "target_update_tau": FloatRange(1e-3, 0.05, log=True),
        "initial_alpha": FloatRange(0.05, 1.0, log=True),
        "actor_layers": Choice(([64, 64], [256, 256])),
        "critic_layers": Choice(([64, 64], [256, 256])),
        "batch_size": Choice((64, 128, 256)),
    }

    def validate(self, run: RunConfig) -> None:
        super().validate(run)
        need(self.alpha_learning_rate > 0, "--alpha_learning_rate must be > 0")
        need(self.initial_alpha > 0, "--initial_alpha must be > 0")


def _half_width(action_spec: tf.TensorSpec) -> np.ndarray:
    low = np.broadcast_to(action_spec.minimum, action_spec.shape).astype(np.float32)
    high = np.broadcast_to(action_spec.maximum, action_spec.shape).astype(np.float32)
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        raise UnsupportedSpaceError(
            f"continuous-action agents need finite action bounds; the env's are [{low}, {high}]"
        )
    return (high - low) / 2.0


def _check_observation(context: AgentContext) -> None:
    spec = context.time_step_spec.observation
    if not isinstance(spec, tf.TensorSpec) or spec.shape.rank != 1 or not spec.dtype.is_floating:
        raise UnsupportedSpaceError(
            "DDPG, TD3 and SAC here take a flat float observation vector (a 1-D Box), but the "
            f"env's observation spec is {describe_spec(spec)}"
        )


def _adam(rate: float) -> tf.keras.optimizers.Optimizer:
    return tf.keras.optimizers.Adam(learning_rate=rate)


def _critic(
    cfg: ActorCriticConfig, context: AgentContext, name: str
) -> critic_network.CriticNetwork:
    return critic_network.CriticNetwork(
        (context.time_step_spec.observation, context.action_spec),
        observation_fc_layer_params=tuple(cfg.critic_observation_layers) or None,
        joint_fc_layer_params=tuple(cfg.critic_layers),
        kernel_initializer="glorot_uniform",
        last_kernel_initializer="glorot_uniform",
        name=name,
    )


def _common_kwargs(cfg: ActorCriticConfig, context: AgentContext) -> dict:
    return dict(
        actor_optimizer=_adam(cfg.actor_learning_rate),
        critic_optimizer=_adam(cfg.critic_learning_rate),
        target_update_tau=cfg.target_update_tau,
        target_update_period=cfg.target_update_period,
        gamma=cfg.gamma,
        reward_scale_factor=cfg.reward_scale,
        gradient_clipping=cfg.gradient_clipping or None,
        train_step_counter=context.train_step,
    )


def _exploring(policy, cfg: DdpgConfig, half_width: np.ndarray, context: AgentContext):  # noqa: ANN001, ANN202
    """The deterministic actor plus per-env collect noise, clipped to the action bounds."""
    scale = (cfg.exploration_noise_std * half_width).astype(np.float32)
    return ActionNoisePolicy(
        policy, scale, cfg.exploration_noise, context.num_envs, damping=cfg.ou_damping
    )


def _deterministic_actor(cfg: DdpgConfig, context: AgentContext) -> actor_network.ActorNetwork:
    # ActorNetwork ends in tanh scaled to the action bounds, so actions stay inside them.
    return actor_network.ActorNetwork(
        context.time_step_spec.observation,
        context.action_spec,
        fc_layer_params=tuple(cfg.actor_layers),
    )


def _built(agent, collect, greedy, context: AgentContext, scalars: dict) -> BuiltAgent:  # noqa: ANN001
    agent.initialize()
    return BuiltAgent(
        agent=agent,
        collect_policy=collect,
        greedy_policy=greedy,
        initial_collect_policy=random_tf_policy.RandomTFPolicy(
            context.time_step_spec, context.action_spec
        ),
        # One-step TD targets: pairs of consecutive time steps.
        hooks=ReplayHooks(train_sequence_length=2),
        scalars=scalars,
    )


def _noise_scalar(cfg: DdpgConfig):  # noqa: ANN202
    value = tf.constant(cfg.exploration_noise_std, tf.float32)
    return lambda: value


def build_ddpg(cfg: DdpgConfig, context: AgentContext) -> BuiltAgent:
    _check_observation(context)
    half_width = _half_width(context.action_spec)
    agent = ddpg_agent.DdpgAgent(
        context.time_step_spec,
        context.action_spec,
        actor_network=_deterministic_actor(cfg, context),
        critic_network=_critic(cfg, context, "critic"),
        # SB3 and the TD3 paper's DDPG use a squared TD loss; TF-Agents defaults to Huber.
        td_errors_loss_fn=tf.math.squared_difference,
        **_common_kwargs(cfg, context),
    )
    # As DdpgAgent trains them: the critic's variables, then the actor's.
    create_optimizer_slots(agent._critic_optimizer, agent._critic_network.trainable_variables)  # noqa: SLF001
    create_optimizer_slots(agent._actor_optimizer, agent._actor_network.trainable_variables)  # noqa: SLF001
    collect = _exploring(agent.policy, cfg, half_width, context)
    return _built(agent, collect, agent.policy, context, {"noise_std": _noise_scalar(cfg)})


def _twin_critic_slots(agent) -> None:  # noqa: ANN001
    """Td3Agent's and SacAgent's critic and actor optimizers, on what they train."""
    critics = critic_variables(agent._critic_network_1, agent._critic_network_2)  # noqa: SLF001
    create_optimizer_slots(agent._critic_optimizer, critics)  # noqa: SLF001
    create_optimizer_slots(agent._actor_optimizer, agent._actor_network.trainable_variables)  # noqa: SLF001


def build_td3(cfg: Td3Config, context: AgentContext) -> BuiltAgent:
    _check_observation(context)
    half_width = _half_width(context.action_spec)
    # Td3Agent takes one scalar for the smoothing noise in action units.
    unit = float(np.mean(half_width))
    agent = td3_agent.Td3Agent(
        context.time_step_spec,
        context.action_spec,
        actor_network=_deterministic_actor(cfg, context),
        critic_network=_critic(cfg, context, "critic"),
        critic_network_2=_critic(cfg, context, "critic_2"),
        actor_update_period=cfg.actor_update_period,
        target_policy_noise=cfg.target_policy_noise * unit,
        target_policy_noise_clip=cfg.target_policy_noise_clip * unit,
        td_errors_loss_fn=tf.math.squared_difference,
        **_common_kwargs(cfg, context),
    )
    _twin_critic_slots(agent)
    collect = _exploring(agent.policy, cfg, half_width, context)
    return _built(agent, collect, agent.policy, context, {"noise_std": _noise_scalar(cfg)})


def build_sac(cfg: SacConfig, context: AgentContext) -> BuiltAgent:
    _check_observation(context)
    _half_width(context.action_spec)  # refuses unbounded actions
    actor = actor_distribution_network.ActorDistributionNetwork(
        context.time_step_spec.observation,
        context.action_spec,
        fc_layer_params=tuple(cfg.actor_layers),
        continuous_projection_net=tanh_normal_projection_network.TanhNormalProjectionNetwork,
    )
    # NaN is -(action dimensions), as in the SAC paper and SB3. TF-Agents' own default
    # (target_entropy=None) is half that, though its docstring says -(action dimensions).
    action_dims = int(np.prod(context.action_spec.shape))
    target_entropy = -float(action_dims) if math.isnan(cfg.target_entropy) else cfg.target_entropy
    agent = sac_agent.SacAgent(
        context.time_step_spec,
        context.action_spec,
        actor_network=actor,
        critic_network=_critic(cfg, context, "critic"),
        critic_network_2=_critic(cfg, context, "critic_2"),
        alpha_optimizer=_adam(cfg.alpha_learning_rate),
        initial_log_alpha=math.log(cfg.initial_alpha),
        target_entropy=target_entropy,
        **_common_kwargs(cfg, context),
    )
    log_alpha = agent._log_alpha  # noqa: SLF001  TF-Agents exposes alpha only privately
    _twin_critic_slots(agent)
    create_optimizer_slots(agent._alpha_optimizer, [log_alpha])  # noqa: SLF001
    # SAC's `agent.policy` is stochastic (the same object as its collect policy); the
    # greedy policy takes the squashed Gaussian's mode.
    greedy = greedy_policy.GreedyPolicy(agent.policy)
    return _built(
        agent, agent.collect_policy, greedy, context, {"alpha": lambda: tf.exp(log_alpha)}
    )


for _spec in (
    AgentSpec("ddpg", DdpgConfig, "replay", CONTINUOUS, build_ddpg, "DDPG (Lillicrap et al. 2016)"),
    AgentSpec("td3", Td3Config, "replay", CONTINUOUS, build_td3, "TD3 (Fujimoto et al. 2018)"),
    AgentSpec("sac", SacConfig, "replay", CONTINUOUS, build_sac, "SAC (Haarnoja et al. 2018)"),
):
    register_agent(_spec)
