"""The compiled collect-train function traces once, optimizer slots included.

A Keras optimizer that creates its slots inside the first compiled call makes TensorFlow
trace the whole function twice (`tfa_suite.agents.optimizer_slots`). One agent per kind of
optimizer state: DQN (tf_keras' optimizer), SAC (its legacy optimizers, three of them) and
PPO with a linearly decaying learning rate (a schedule's current-rate variable).
"""

from __future__ import annotations

import pytest

from tfa_suite.run.build import build
from tfa_suite.run.train import resolve_config


@pytest.mark.parametrize(
    "agent, fields",
    [("dqn", {}), ("sac", {}), ("ppo", {"learning_rate_decay": "linear"})],
)
def test_collect_train_traces_once(agent, fields, tmp_path, tiny_config):
    parts = build(resolve_config(tiny_config(tmp_path / agent, agent=agent, **fields)))
    loop = parts.loop
    loop.prefill(loop.prefill_steps())
    loop.run(1)
    loop.run(2)
    assert loop.collect_train.experimental_get_tracing_count() == 1


def test_the_check_fails_without_the_slots(tmp_path, tiny_config, monkeypatch):
    # With slot creation switched off, the same call traces twice: the test above can fail.
    monkeypatch.setattr(
        "tfa_suite.agents.q_learning.create_optimizer_slots", lambda optimizer, variables: None
    )
    parts = build(resolve_config(tiny_config(tmp_path / "dqn", agent="dqn")))
    parts.loop.prefill(parts.loop.prefill_steps())
    parts.loop.run(1)
    assert parts.loop.collect_train.experimental_get_tracing_count() == 2
