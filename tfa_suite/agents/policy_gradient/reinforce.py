"""REINFORCE (Williams 1992) on the rollout loop: TF-Agents' `ReinforceAgent`, with or
without a learned value baseline.

It computes Monte-Carlo returns along each [N, T] rollout row and trains only on entries
whose episode ends inside the rollout (its own mask), one update per rollout.
`--reset_return_on_reward` makes every rewarded step end a return as well (Pong's points,
as in Karpathy's "Pong from pixels").
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf
from tf_agents.agents import tf_agent
from tf_agents.agents.reinforce import reinforce_agent
from tf_agents.policies import greedy_policy
from tf_agents.trajectories import time_step as ts
from tf_agents.trajectories import trajectory as trajectory_lib

from tfa_suite.agents.interface import AgentContext, BuiltAgent, RolloutHooks
from tfa_suite.agents.optimizer_slots import create_optimizer_slots
from tfa_suite.agents.policy_gradient.common import (
    PolicyGradientConfig,
    actor_net,
    learning_rate_scalars,
    make_optimizer,
    value_net,
)
from tfa_suite.agents.registry import ANY_ACTIONS, AgentSpec, register_agent
from tfa_suite.config import RunConfig, _field, need, parse_layers


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


def build_reinforce(cfg: ReinforceConfig, context: AgentContext) -> BuiltAgent:
    optimizer = make_optimizer(cfg, context)
    agent = EpisodeReinforceAgent(
        context.time_step_spec,
        context.action_spec,
        actor_network=actor_net(cfg, context),
        optimizer=optimizer,
        value_network=value_net(cfg, cfg.value_layers, context) if cfg.use_value_baseline else None,
        value_estimation_loss_coef=cfg.value_coef,
        gamma=cfg.gamma,
        standardize=cfg.normalize_returns,
        gradient_clipping=cfg.gradient_clipping or None,
        entropy_regularization=cfg.entropy_coef or None,
        train_step_counter=context.train_step,
    )
    agent.initialize()
    # ReinforceAgent trains the actor's weights, then the value network's (with a baseline).
    trained = list(agent._actor_network.trainable_weights)  # noqa: SLF001
    if cfg.use_value_baseline:
        trained += agent._value_network.trainable_weights  # noqa: SLF001
    create_optimizer_slots(optimizer, trained)
    prepare = None
    if cfg.reset_return_on_reward:
        prepare = lambda rollout, _time_step: points_as_returns_ends(rollout)  # noqa: E731
    return BuiltAgent(
        agent=agent,
        collect_policy=agent.collect_policy,
        greedy_policy=greedy_policy.GreedyPolicy(agent.policy),
        initial_collect_policy=agent.collect_policy,
        sampled_policy=agent.collect_policy if cfg.export_sampled_policy else None,
        # Returns run along each row's time, so the rollout is one [N, T] batch.
        hooks=RolloutHooks(prepare=prepare, entries_independent=False, single_update=True),
        scalars=learning_rate_scalars(optimizer),
    )


register_agent(
    AgentSpec(
        "reinforce",
        ReinforceConfig,
        "rollout",
        ANY_ACTIONS,
        build_reinforce,
        "REINFORCE, with or without a value baseline (Williams 1992)",
    )
)
