"""C51: categorical DQN (Bellemare et al. 2017) with TF-Agents' CategoricalDqnAgent.

The course material's Atari setup used it. It shares DQN's network torso, optimizers and
epsilon-greedy schedule; the network predicts a distribution over `num_atoms` returns
between `min_q_value` and `max_q_value` for every action, and the loss is the
cross-entropy to the projected target distribution (so there is no --loss, and no
--double_dqn: TF-Agents' CategoricalDqnAgent has no double-DQN target).
"""

from __future__ import annotations

import dataclasses

from tf_agents.agents.categorical_dqn import categorical_dqn_agent
from tf_agents.networks import categorical_q_network

from tfa_suite.agents.dqn import (
    QLearningConfig,
    agent_kwargs,
    built_q_agent,
    check_observation_spec,
    linear_epsilon,
    network_kwargs,
)
from tfa_suite.agents.registry import DISCRETE, AgentContext, AgentSpec, BuiltAgent, register_agent
from tfa_suite.config import RunConfig, TrainConfig, _field, need


@dataclasses.dataclass
class C51Config(QLearningConfig):
    num_atoms: int = _field(51, "atoms of the return distribution")
    min_q_value: float = _field(-10.0, "lowest atom")
    max_q_value: float = _field(10.0, "highest atom")

    def validate(self, run: RunConfig) -> None:
        super().validate(run)
        need(self.num_atoms >= 2, "--num_atoms must be >= 2")
        need(self.min_q_value < self.max_q_value, "--min_q_value must be < --max_q_value")


def build_c51(config: TrainConfig, context: AgentContext) -> BuiltAgent:
    cfg: C51Config = config.agent  # type: ignore[assignment]
    observation_spec = context.time_step_spec.observation
    check_observation_spec(observation_spec)
    network = categorical_q_network.CategoricalQNetwork(
        observation_spec,
        context.action_spec,
        num_atoms=cfg.num_atoms,
        **network_kwargs(cfg, observation_spec),
    )
    epsilon = linear_epsilon(cfg, context)
    agent = categorical_dqn_agent.CategoricalDqnAgent(
        context.time_step_spec,
        context.action_spec,
        categorical_q_network=network,
        min_q_value=cfg.min_q_value,
        max_q_value=cfg.max_q_value,
        **agent_kwargs(cfg, context, epsilon),
    )
    return built_q_agent(agent, cfg, epsilon)


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
