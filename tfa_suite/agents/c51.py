"""C51: categorical DQN (Bellemare et al. 2017) with TF-Agents' CategoricalDqnAgent.

The course material's Atari setup used it. It shares DQN's network torso, optimizers and
epsilon-greedy schedule; the network predicts a distribution over `num_atoms` returns
between `min_q_value` and `max_q_value` for every action, and the loss is the
cross-entropy to the projected target distribution (so there is no --loss, and no
--double_dqn: TF-Agents' CategoricalDqnAgent has no double-DQN target).
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf
from tf_agents.agents import tf_agent
from tf_agents.agents.categorical_dqn import categorical_dqn_agent
from tf_agents.agents.dqn import dqn_agent
from tf_agents.networks import categorical_q_network
from tf_agents.trajectories import trajectory
from tf_agents.utils import common, value_ops

from tfa_suite.agents import nstep
from tfa_suite.agents.interface import AgentContext, BuiltAgent
from tfa_suite.agents.q_learning import (
    QLearningConfig,
    agent_kwargs,
    built_q_agent,
    check_observation_spec,
    linear_epsilon,
    network_kwargs,
)
from tfa_suite.agents.registry import DISCRETE, AgentSpec, register_agent
from tfa_suite.config import RunConfig, _field, need


@dataclasses.dataclass
class C51Config(QLearningConfig):
    num_atoms: int = _field(51, "atoms of the return distribution")
    min_q_value: float = _field(-10.0, "lowest atom")
    max_q_value: float = _field(10.0, "highest atom")

    def validate(self, run: RunConfig) -> None:
        super().validate(run)
        need(self.num_atoms >= 2, "--num_atoms must be >= 2")
        need(self.min_q_value < self.max_q_value, "--min_q_value must be < --max_q_value")


class C51Agent(categorical_dqn_agent.CategoricalDqnAgent):
    """TF-Agents' CategoricalDqnAgent with the loss it should have.

    Its own `_loss` (tf-agents 0.19.0) has five gaps this one closes; the target is
    built the same way (the target network's distribution at the window's last step,
    the n-step discounted return, `project_distribution` onto the support), so on
    windows without an episode boundary and without weights the loss is the same:
    - `weights` are documented but ignored; here they weight each sample's cross-entropy,
      as prioritized replay's importance weights must;
    - a window whose first step is LAST (it starts at an episode's end, where the replay
      window runs into the next episode) is trained on; here it is masked, as DqnAgent
      masks it;
    - it returns no per-sample error (its `td_error` is empty); here `td_error` is each
      sample's cross-entropy, which prioritized replay uses as the priority (as in
      Rainbow, Hessel et al. 2018);
    - a window of the wrong length trains silently on the wrong n-step return; here
      it is refused;
    - and an n-step window that runs past a truncated episode's end into the next
      episode is trained on; here it gets weight 0 (`tfa_suite.agents.nstep`).
    """

    def _loss(
        self, experience, td_errors_loss_fn=None, gamma=1.0, reward_scale_factor=1.0,
        weights=None, training=False,
    ) -> tf_agent.LossInfo:  # fmt: skip  # noqa: ANN001
        steps = self._n_step_update + 1
        if experience.step_type.shape[1] != steps:
            raise ValueError(
                f"C51 with n_step_update={self._n_step_update} trains on windows of {steps} "
                f"steps, not {experience.step_type.shape[1]}"
            )
        # Windows that run past a time limit into the next episode, or across a seam
        # where a replay row restarted: weight 0 (tfa_suite.agents.nstep).
        keep, weights = nstep.kept(experience, weights)
        first = tf.nest.map_structure(lambda x: x[:, :2], experience)
        last = tf.nest.map_structure(lambda x: x[:, -2:], experience)
        time_steps, policy_steps, _ = trajectory.experience_to_transitions(first, True)
        _, _, next_time_steps = trajectory.experience_to_transitions(last, True)
        with tf.name_scope("critic_loss"):
            logits, _ = self._q_network(
                time_steps.observation, step_type=time_steps.step_type, training=training
            )
            chosen = tf.gather(logits, policy_steps.action, batch_dims=1)
            next_distribution = self._next_q_distribution(next_time_steps)
            # n-step return of the window, then the discounted support of its last step.
            rewards = reward_scale_factor * experience.reward[:, :-1]
            discounts = gamma * experience.discount[:, :-1]
            returns = value_ops.discounted_return(
                rewards, discounts, final_value=tf.zeros_like(rewards[:, 0]),
                time_major=False, provide_all_returns=False,
            )  # fmt: skip
            tail = tf.reduce_prod(discounts, axis=1)
            target_support = returns[:, None] + tail[:, None] * self._support[None, :]
            target = tf.stop_gradient(
                categorical_dqn_agent.project_distribution(
                    target_support, next_distribution, self._support
                )
            )
            cross_entropy = tf.nn.softmax_cross_entropy_with_logits(labels=target, logits=chosen)
            cross_entropy *= tf.cast(~time_steps.is_last(), cross_entropy.dtype)
            total = common.aggregate_losses(
                per_example_loss=cross_entropy,
                sample_weight=weights,
                regularization_loss=self._q_network.losses,
            ).total_loss
        return tf_agent.LossInfo(
            total,
            dqn_agent.DqnLossInfo(td_loss=cross_entropy, td_error=cross_entropy * keep),
        )


def build_c51(cfg: C51Config, context: AgentContext) -> BuiltAgent:
    observation_spec = context.time_step_spec.observation
    check_observation_spec(observation_spec)
    network = categorical_q_network.CategoricalQNetwork(
        observation_spec,
        context.action_spec,
        num_atoms=cfg.num_atoms,
        **network_kwargs(cfg, observation_spec),
    )
    epsilon = linear_epsilon(cfg, context)
    agent = C51Agent(
        context.time_step_spec,
        context.action_spec,
        categorical_q_network=network,
        min_q_value=cfg.min_q_value,
        max_q_value=cfg.max_q_value,
        **agent_kwargs(cfg, context, epsilon),
    )
    # The per-sample cross-entropy is C51's priority for prioritized replay.
    return built_q_agent(agent, cfg, epsilon, sample_errors=lambda info: info.extra.td_error)


register_agent(
    AgentSpec(
        name="c51",
        config_cls=C51Config,
        loop="replay",
        actions=DISCRETE,
        build=build_c51,
        summary="categorical DQN (Bellemare et al. 2017)",
    )
)
