"""PPO and A2C on the rollout loop: TF-Agents' `PPOClipAgent`, trained one minibatch per call.

- PPO (Schulman et al. 2017): `PPOClipAgent` with advantages computed outside its train
  step (`compute_value_and_advantage_in_train=False`) by `advantages.gae`, so the rollout
  loop can shuffle the N*T entries into real minibatches for several epochs (TF-Agents
  alone trains each epoch on the whole batch, tensorflow/agents#805). Built with
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
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import tensorflow as tf
from tf_agents.agents.ppo import ppo_clip_agent
from tf_agents.trajectories import time_step as ts
from tf_agents.trajectories import trajectory as trajectory_lib

from tfa_suite.agents.interface import AgentContext, BuiltAgent, RolloutHooks
from tfa_suite.agents.optimizer_slots import create_optimizer_slots, ppo_variables
from tfa_suite.agents.policy_gradient.advantages import gae
from tfa_suite.agents.policy_gradient.common import (
    PolicyGradientConfig,
    actor_net,
    learning_rate_scalars,
    make_optimizer,
    value_net,
)
from tfa_suite.agents.registry import ANY_ACTIONS, AgentSpec, register_agent
from tfa_suite.config import (
    Choice,
    FloatRange,
    IntRange,
    RunConfig,
    SearchParam,
    _field,
    need,
    parse_layers,
)


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

    # What experiments/tune.py searches by default; rollout_steps, num_epochs and
    # minibatch_size are the rollout loop's. Rollouts of a multiple of 64 steps split into
    # minibatches of 32 or 64 (or 0: the whole rollout) whatever --num_envs is, so every
    # combination is valid.
    SEARCH_SPACE: ClassVar[dict[str, SearchParam]] = {
        "learning_rate": FloatRange(1e-4, 3e-3, log=True),
        "gamma": Choice((0.95, 0.98, 0.99, 0.995, 0.999)),
        "gae_lambda": Choice((0.8, 0.9, 0.95, 0.98, 1.0)),
        "clip_ratio": Choice((0.1, 0.2, 0.3)),
        "entropy_coef": FloatRange(1e-6, 0.03, log=True),
        "rollout_steps": Choice((64, 128, 256)),
        "num_epochs": IntRange(1, 20),
        "minibatch_size": Choice((0, 32, 64)),
    }

    def validate(self, run: RunConfig) -> None:
        super().validate(run)
        need(0.0 < self.clip_ratio < 1.0, "--clip_ratio must be in (0, 1)")


def _advantages_for(collect, cfg: A2cConfig):  # noqa: ANN001, ANN202
    """The rollout -> training data step: GAE advantages and value targets per entry."""
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

    return prepare


def _ppo_family(
    cfg: A2cConfig, context: AgentContext, clip_ratio: float, hooks: RolloutHooks
) -> BuiltAgent:
    optimizer = make_optimizer(cfg, context)
    agent = ppo_clip_agent.PPOClipAgent(
        context.time_step_spec,
        context.action_spec,
        optimizer=optimizer,
        actor_net=actor_net(cfg, context),
        value_net=value_net(cfg, cfg.value_layers, context),
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
    create_optimizer_slots(optimizer, ppo_variables(agent._actor_net, agent._value_net))  # noqa: SLF001
    collect = agent.collect_policy

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
        sampled_policy=collect if cfg.export_sampled_policy else None,
        # Each entry carries its own advantage and return, so entries may be shuffled.
        hooks=dataclasses.replace(
            hooks,
            prepare=_advantages_for(collect, cfg),
            entries_independent=True,
            after_updates=after_updates if cfg.normalize_observations else None,
        ),
        scalars=learning_rate_scalars(optimizer),
    )


def build_a2c(cfg: A2cConfig, context: AgentContext) -> BuiltAgent:
    hooks = RolloutHooks(
        single_update=True, single_update_note="; use --agent=ppo for epochs and minibatches"
    )
    return _ppo_family(cfg, context, clip_ratio=0.0, hooks=hooks)


def build_ppo(cfg: PpoConfig, context: AgentContext) -> BuiltAgent:
    return _ppo_family(cfg, context, clip_ratio=cfg.clip_ratio, hooks=RolloutHooks())


register_agent(
    AgentSpec("a2c", A2cConfig, "rollout", ANY_ACTIONS, build_a2c, "A2C (Mnih et al. 2016)")
)
register_agent(
    AgentSpec(
        "ppo", PpoConfig, "rollout", ANY_ACTIONS, build_ppo, "PPO-clip (Schulman et al. 2017)"
    )
)
