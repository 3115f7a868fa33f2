"""On-policy policy-gradient agents on the rollout loop: REINFORCE, A2C and PPO.

- REINFORCE (Williams 1992): TF-Agents' `ReinforceAgent`, with or without a learned value
  baseline. It computes Monte-Carlo returns along each [N, T] rollout row and trains only
  on entries whose episode ends inside the rollout (its own mask), one update per rollout.
  `--reset_return_on_reward` makes every rewarded step end a return as well (Pong's points,
  as in Karpathy's "Pong from pixels").
- PPO (Schulman et al. 2017): TF-Agents' `PPOClipAgent` with advantages computed outside
  its train step (`compute_value_and_advantage_in_train=False`) by `loops.advantages.gae`,
  so the rollout loop can shuffle the N*T entries into real minibatches for several epochs
  (TF-Agents alone trains each epoch on the whole batch, tensorflow/agents#805). Built with
  `num_epochs=1`, its step counter then advances once per minibatch, i.e. per gradient
  step, instead of once per epoch (#357).
- A2C (Mnih et al. 2016, synchronous): the same agent and networks with one update per
  rollout and no ratio clipping. At the one update the probability ratio is exactly 1, so
  PPO's surrogate gradient is the actor-critic gradient: advantage times grad log-prob,
  plus the value loss and the entropy bonus.

TF-Agents' PPO normalizes the advantages of every train call (here: every minibatch, as
SB3 does); it has no switch for it. Observation normalization (`--normalize_observations`)
is TF-Agents' streaming normalizer inside the policies, updated once per rollout after its
updates, not once per minibatch (`update_normalizers_in_train=False`), so every update of
a rollout sees the normalization it was collected with.

Greedy evaluation and the export take the action distribution's mode, through
`GreedyPolicy`, which clips continuous actions to the action bounds (TF-Agents builds its
PPO policies with `clip=False`; collection keeps the unclipped samples, whose log
probabilities the loss needs, and the env clips what it is given).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np
import tensorflow as tf
from tf_agents.agents import tf_agent
from tf_agents.agents.ppo import ppo_clip_agent
from tf_agents.agents.reinforce import reinforce_agent
from tf_agents.networks import (
    actor_distribution_network,
    normal_projection_network,
    value_network,
)
from tf_agents.policies import greedy_policy
from tf_agents.trajectories import time_step as ts
from tf_agents.trajectories import trajectory as trajectory_lib

from tfa_suite.agents.registry import (
    ANY_ACTIONS,
    AgentContext,
    AgentSpec,
    BuiltAgent,
    register_agent,
)
from tfa_suite.config import RunConfig, Section, TrainConfig, _field, need, parse_layers
from tfa_suite.errors import UnsupportedSpaceError, UserError
from tfa_suite.loops.advantages import gae

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
    squash_action_mean: bool = _field(
        True,
        "continuous actions: squash the Gaussian's mean into the action bounds with tanh "
        "(TF-Agents' default); false: a linear mean, the env clipping what it is given, "
        "as SB3 does",
    )

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


@dataclasses.dataclass
class ReinforceConfig(PolicyGradientConfig):
    use_value_baseline: bool = _field(
        True, "subtract a learned state value from the returns (REINFORCE with baseline)"
    )
    value_layers: list[int] = _field([64, 64], "hidden layer sizes of the value network")
    value_coef: float = _field(0.5, "weight of the value loss (with the baseline)")
    normalize_returns: bool = _field(
        True, "standardize the returns (or advantages, with the baseline) of each rollout"
    )
    reset_return_on_reward: bool = _field(
        False,
        "every nonzero reward ends a return, as a scored point does in Pong (Karpathy 2016)",
    )

    def validate(self, run: RunConfig) -> None:
        super().validate(run)
        parse_layers("value_layers", self.value_layers)
        need(self.value_coef >= 0, "--value_coef must be >= 0")


@dataclasses.dataclass
class A2cConfig(PolicyGradientConfig):
    value_layers: list[int] = _field([64, 64], "hidden layer sizes of the value network")
    value_coef: float = _field(0.5, "weight of the value loss")
    gae_lambda: float = _field(
        1.0, "GAE lambda: 1 is the n-step return to the rollout's end, 0 the one-step TD error"
    )
    normalize_observations: bool = _field(
        False, "streaming mean/variance normalization of observations, inside the policies"
    )
    reward_scale: float = _field(
        1.0, "rewards are multiplied by this for the advantages and value targets"
    )
    gradient_clipping: float = _field(0.5, "clip gradients to this global norm; 0 is off")

    def validate(self, run: RunConfig) -> None:
        super().validate(run)
        parse_layers("value_layers", self.value_layers)
        need(self.value_coef >= 0, "--value_coef must be >= 0")
        need(0.0 <= self.gae_lambda <= 1.0, "--gae_lambda must be in [0, 1]")
        need(
            math.isfinite(self.reward_scale) and self.reward_scale > 0,
            "--reward_scale must be finite and > 0",
        )


@dataclasses.dataclass
class PpoConfig(A2cConfig):
    gae_lambda: float = _field(0.95, "GAE lambda (Schulman et al. 2016)")
    clip_ratio: float = _field(0.2, "PPO's probability-ratio clip epsilon")

    def validate(self, run: RunConfig) -> None:
        super().validate(run)
        need(0.0 < self.clip_ratio < 1.0, "--clip_ratio must be in (0, 1)")


# --- networks and optimizer ---------------------------------------------------------------


def _preprocessing(cfg: PolicyGradientConfig, context: AgentContext):  # noqa: ANN202
    """A fresh instance per network (Keras layers belong to one network)."""
    if not cfg.observation_preprocessing:
        observation = context.time_step_spec.observation
        if not isinstance(observation, tf.TensorSpec) or observation.shape.rank != 1:
            shown = (
                f"{observation.dtype.name} {observation.shape.as_list()}"
                if isinstance(observation, tf.TensorSpec)
                else type(observation).__name__
            )
            raise UnsupportedSpaceError(
                "the policy-gradient networks take a flat vector observation (a 1-D Box); "
                f"the env's observations are {shown}. For Pong frames use "
                "--observation_preprocessing=pong_diff"
            )
        return None
    from tfa_suite.agents.preprocessing import observation_preprocessing

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


def _actor(cfg: PolicyGradientConfig, context: AgentContext):  # noqa: ANN202
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


def _value(cfg: ReinforceConfig | A2cConfig, context: AgentContext):  # noqa: ANN202
    return value_network.ValueNetwork(
        context.time_step_spec.observation,
        preprocessing_layers=_preprocessing(cfg, context),
        fc_layer_params=tuple(cfg.value_layers),
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


def _learning_rate(cfg: PolicyGradientConfig, config: TrainConfig, context: AgentContext):  # noqa: ANN202
    if cfg.learning_rate_decay == "constant":
        return cfg.learning_rate
    return LinearDecay(cfg.learning_rate, context.env_steps, config.run.num_env_steps)


def _optimizer(cfg: PolicyGradientConfig, config: TrainConfig, context: AgentContext):  # noqa: ANN202
    rate = _learning_rate(cfg, config, context)
    if cfg.optimizer == "rmsprop":
        return tf.keras.optimizers.RMSprop(
            learning_rate=rate, rho=cfg.rmsprop_decay, epsilon=cfg.optimizer_epsilon
        )
    return tf.keras.optimizers.Adam(learning_rate=rate, epsilon=cfg.optimizer_epsilon)


def _scalars(optimizer: tf.keras.optimizers.Optimizer) -> dict:
    schedule = optimizer._learning_rate  # noqa: SLF001  (`.learning_rate` is its last value)
    if not isinstance(schedule, LinearDecay):
        return {}
    return {"learning_rate": lambda: schedule(optimizer.iterations)}


def _check_one_update(config: TrainConfig) -> None:
    loop = config.loop
    if loop.num_epochs != 1 or loop.minibatch_size != 0:
        raise UserError(
            f"--agent=a2c makes one update per rollout: it takes --num_epochs=1 and "
            f"--minibatch_size=0, not {loop.num_epochs} and {loop.minibatch_size}; use "
            "--agent=ppo for epochs and minibatches"
        )


# --- REINFORCE ----------------------------------------------------------------------------


def points_as_returns_ends(rollout: trajectory_lib.Trajectory) -> trajectory_lib.Trajectory:
    """Marks every rewarded entry as the end of a return, the way `ReinforceAgent` sees it.

    `ReinforceAgent` restarts its returns after entries whose next step is LAST
    (`Trajectory.is_last`), and trains only on entries up to a row's last such entry. A
    rewarded entry gets next step type LAST, so the return restarts after each scored
    point and every complete point counts. Its step type, which marks the LAST -> FIRST
    boundary entries the loss leaves out, is untouched: the entry after a point is a real
    step of the game.
    """
    last = tf.constant(ts.StepType.LAST, rollout.next_step_type.dtype)
    scored = tf.not_equal(rollout.reward, 0.0)
    return rollout._replace(next_step_type=tf.where(scored, last, rollout.next_step_type))


def trained_entries(experience: trajectory_lib.Trajectory) -> tf.Tensor:
    """[N, T] float: the entries `ReinforceAgent` learns from.

    An entry counts when its return is complete (an episode, or a point, ends at or after
    it in its row: `Trajectory.is_last` marks the ends) and it is a real transition, not a
    LAST -> FIRST boundary entry.
    """
    ends = tf.cast(experience.is_last(), tf.float32)
    complete = tf.math.cumsum(ends, axis=1, reverse=True) > 0
    return tf.cast(complete & ~experience.is_boundary(), tf.float32)


class EpisodeReinforceAgent(reinforce_agent.ReinforceAgent):
    """`ReinforceAgent` with three repairs for training on fixed rollouts.

    - A rollout in which no return is complete (long games, short `--rollout_steps`)
      makes no update and reports a loss of 0: TF-Agents' loss asserts a complete episode
      in every batch, an in-graph error that would stop the run.
    - `--normalize_returns` standardizes the returns (or advantages) over the entries that
      are trained on. TF-Agents standardizes over the whole [N, T] batch, the cut-off tail
      after a row's last episode end and the boundary entries included, which shifts the
      mean of what is reinforced.
    - Boundary entries get weight 0 in the value loss as well: TF-Agents masks them only in
      the policy loss, so the value of an episode's final observation was fit to the next
      episode's return.
    """

    def __init__(self, *args, standardize: bool, **kwargs):  # noqa: ANN002, ANN003
        self._standardize = standardize
        self._trained = None  # the batch's trained_entries, set while _train traces
        super().__init__(*args, normalize_returns=False, advantage_fn=self._advantages, **kwargs)

    def _advantages(self, returns: tf.Tensor, value_preds: tf.Tensor | None) -> tf.Tensor:
        advantages = returns if value_preds is None else returns - value_preds
        if not self._standardize:
            return advantages
        weights = self._trained
        count = tf.maximum(tf.reduce_sum(weights), 1.0)
        mean = tf.reduce_sum(advantages * weights) / count
        variance = tf.reduce_sum(tf.square(advantages - mean) * weights) / count
        return (advantages - mean) / (tf.sqrt(variance) + 1e-8)

    def _train(self, experience, weights=None):  # noqa: ANN001, ANN202
        # Trajectory.is_last: the entry's next step is LAST, i.e. an episode (or with
        # --reset_return_on_reward, a point) ends with it.
        ended = tf.reduce_any(experience.is_last())
        real = tf.cast(~experience.is_boundary(), tf.float32)
        weights = real if weights is None else weights * real

        def skip() -> tf_agent.LossInfo:
            zero = tf.constant(0.0)
            extra = reinforce_agent.ReinforceAgentLossInfo(*[zero] * 5)
            return tf_agent.LossInfo(zero, extra)

        def update() -> tf_agent.LossInfo:
            self._trained = trained_entries(experience)
            info = super(EpisodeReinforceAgent, self)._train(experience, weights)
            extra = reinforce_agent.ReinforceAgentLossInfo(
                *[tf.convert_to_tensor(v, tf.float32) for v in info.extra]
            )
            return tf_agent.LossInfo(tf.convert_to_tensor(info.loss, tf.float32), extra)

        return tf.cond(ended, update, skip)


def build_reinforce(config: TrainConfig, context: AgentContext) -> BuiltAgent:
    cfg: ReinforceConfig = config.agent  # type: ignore[assignment]
    optimizer = _optimizer(cfg, config, context)
    agent = EpisodeReinforceAgent(
        context.time_step_spec,
        context.action_spec,
        actor_network=_actor(cfg, context),
        optimizer=optimizer,
        value_network=_value(cfg, context) if cfg.use_value_baseline else None,
        value_estimation_loss_coef=cfg.value_coef,
        gamma=cfg.gamma,
        standardize=cfg.normalize_returns,
        gradient_clipping=cfg.gradient_clipping or None,
        entropy_regularization=cfg.entropy_coef or None,
        train_step_counter=context.train_step,
    )
    agent.initialize()
    prepare = None
    if cfg.reset_return_on_reward:
        prepare = lambda rollout, _time_step: points_as_returns_ends(rollout)  # noqa: E731
    return BuiltAgent(
        agent=agent,
        collect_policy=agent.collect_policy,
        greedy_policy=greedy_policy.GreedyPolicy(agent.policy),
        initial_collect_policy=agent.collect_policy,
        train_sequence_length=None,
        scalars=_scalars(optimizer),
        prepare_rollout=prepare,
        rollout_entries_independent=False,
    )


# --- A2C and PPO --------------------------------------------------------------------------


def _ppo_family(config: TrainConfig, context: AgentContext, clip_ratio: float) -> BuiltAgent:
    cfg: A2cConfig = config.agent  # type: ignore[assignment]
    optimizer = _optimizer(cfg, config, context)
    agent = ppo_clip_agent.PPOClipAgent(
        context.time_step_spec,
        context.action_spec,
        optimizer=optimizer,
        actor_net=_actor(cfg, context),
        value_net=_value(cfg, context),
        greedy_eval=True,
        importance_ratio_clipping=clip_ratio,
        lambda_value=cfg.gae_lambda,
        discount_factor=cfg.gamma,
        entropy_regularization=cfg.entropy_coef,
        value_pred_loss_coef=cfg.value_coef,
        num_epochs=1,  # the rollout loop runs the epochs, one train call per minibatch
        use_gae=True,
        normalize_rewards=False,  # gae() sees the env's rewards
        normalize_observations=cfg.normalize_observations,
        gradient_clipping=cfg.gradient_clipping or None,
        compute_value_and_advantage_in_train=False,
        update_normalizers_in_train=False,
        train_step_counter=context.train_step,
    )
    agent.initialize()
    collect = agent.collect_policy
    gamma, lam, scale = cfg.gamma, cfg.gae_lambda, cfg.reward_scale

    def prepare(rollout: trajectory_lib.Trajectory, time_step: ts.TimeStep):  # noqa: ANN202
        # Values of the rollout's observations were recorded while collecting; the one
        # after its last entry bootstraps the final advantages.
        bootstrap, _ = collect.apply_value_network(
            time_step.observation, time_step.step_type, value_state=(), training=False
        )
        scaled = rollout._replace(reward=rollout.reward * scale) if scale != 1.0 else rollout
        advantages, returns = gae(
            scaled, rollout.policy_info["value_prediction"], bootstrap, gamma, lam
        )
        info = dict(rollout.policy_info, advantage=advantages, **{"return": returns})
        return rollout._replace(policy_info=info)

    def after_updates(rollout: trajectory_lib.Trajectory) -> tf.Operation:
        # Only now, so collection and every update of this rollout saw one normalization:
        # the stored action probabilities and the trained ones start out equal (ratio 1).
        agent.update_observation_normalizer(rollout.observation)
        return tf.no_op()

    return BuiltAgent(
        agent=agent,
        collect_policy=collect,
        greedy_policy=agent.policy,  # GreedyPolicy: the mode, clipped to the bounds
        initial_collect_policy=collect,
        train_sequence_length=None,
        scalars=_scalars(optimizer),
        prepare_rollout=prepare,
        rollout_entries_independent=True,
        after_rollout_updates=after_updates if cfg.normalize_observations else None,
    )


def build_a2c(config: TrainConfig, context: AgentContext) -> BuiltAgent:
    _check_one_update(config)
    return _ppo_family(config, context, clip_ratio=0.0)


def build_ppo(config: TrainConfig, context: AgentContext) -> BuiltAgent:
    cfg: PpoConfig = config.agent  # type: ignore[assignment]
    return _ppo_family(config, context, clip_ratio=cfg.clip_ratio)


for _spec in (
    AgentSpec(
        "reinforce",
        ReinforceConfig,
        "rollout",
        ANY_ACTIONS,
        build_reinforce,
        "REINFORCE, with or without a value baseline (Williams 1992)",
    ),
    AgentSpec("a2c", A2cConfig, "rollout", ANY_ACTIONS, build_a2c, "A2C (Mnih et al. 2016)"),
    AgentSpec(
        "ppo", PpoConfig, "rollout", ANY_ACTIONS, build_ppo, "PPO-clip (Schulman et al. 2017)"
    ),
):
    register_agent(_spec)
