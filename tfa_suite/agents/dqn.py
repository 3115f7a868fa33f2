"""DQN and double DQN: TF-Agents' QNetwork (or the dueling one) with DqnAgent / DdqnAgent.

`DqnConfig` is `QLearningConfig` (`tfa_suite.agents.q_learning`, shared with C51) plus the
double-DQN and dueling switches and the TD loss.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from tf_agents.networks import q_network
from tf_agents.utils import common

from tfa_suite.agents import nstep
from tfa_suite.agents.dueling import DuelingQNetwork
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
from tfa_suite.config import Choice, FloatRange, IntRange, RunConfig, SearchParam, _field, need


@dataclasses.dataclass
class DqnConfig(QLearningConfig):
    double_dqn: bool = _field(False, "double DQN targets (van Hasselt et al. 2016)")
    dueling: bool = _field(False, "dueling head: Q = V + A - mean(A) (Wang et al. 2016)")
    loss: str = _field("huber", "TD loss: huber or squared")

    # What experiments/tune.py searches by default (batch_size is the replay loop's): the
    # rates, the target network, n-step targets and the exploration schedule.
    SEARCH_SPACE: ClassVar[dict[str, SearchParam]] = {
        "learning_rate": FloatRange(1e-4, 1e-2, log=True),
        "gamma": Choice((0.95, 0.98, 0.99, 0.995)),
        "n_step": IntRange(1, 5),
        "target_update_period": IntRange(10, 2_000, log=True),
        "epsilon_end": FloatRange(0.01, 0.1),
        "epsilon_decay_steps": IntRange(1_000, 50_000, log=True),
        "fc_layers": Choice(([64, 64], [128, 128], [256, 256])),
        "batch_size": Choice((32, 64, 128, 256)),
    }

    def validate(self, run: RunConfig) -> None:
        super().validate(run)
        need(
            self.loss in ("huber", "squared"), f"--loss must be huber or squared, not {self.loss!r}"
        )


def build_dqn(cfg: DqnConfig, context: AgentContext) -> BuiltAgent:
    check_observation_spec(context.time_step_spec.observation)
    network_cls = DuelingQNetwork if cfg.dueling else q_network.QNetwork
    q_net = network_cls(
        context.time_step_spec.observation,
        context.action_spec,
        **network_kwargs(cfg, context.time_step_spec.observation),
    )
    epsilon = linear_epsilon(cfg, context)
    # TF-Agents' agents, with n-step windows that cross a time limit left out (nstep.py).
    agent_cls = nstep.DdqnAgent if cfg.double_dqn else nstep.DqnAgent
    agent = agent_cls(
        context.time_step_spec,
        context.action_spec,
        q_network=q_net,
        td_errors_loss_fn=(
            common.element_wise_huber_loss
            if cfg.loss == "huber"
            else common.element_wise_squared_loss
        ),
        **agent_kwargs(cfg, context, epsilon),
    )
    # DqnLossInfo.td_error: target minus Q of the taken action, per sample ([B]).
    return built_q_agent(agent, cfg, epsilon, sample_errors=lambda info: info.extra.td_error)


register_agent(
    AgentSpec(
        name="dqn",
        config_cls=DqnConfig,
        loop="replay",
        actions=DISCRETE,
        build=build_dqn,
        summary=(
            "DQN (Mnih et al. 2015), double DQN with --double_dqn, dueling with --dueling, "
            "n-step with --n_step"
        ),
    )
)
