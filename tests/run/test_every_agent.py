"""Every registered agent, end to end: a tiny run through `train()` on its default env.

One run per agent (parametrized over the registry, so a new agent is covered as soon as it
has a tiny config in conftest's TINY_AGENT) passes through every stage of a session:
prefill or not, compiled calls, metrics rows, checkpoints, the export, its reload and its
score. What each checks is what a broken agent or loop would get wrong:
- the run reaches its length and makes gradient steps, with finite losses in every row;
- metrics rows land at their multiples, and a checkpoint holds the last env step;
- the exported SavedModel loads with TensorFlow alone and scores exactly what the run
  reported for it on the same evaluation seeds.
"""

from __future__ import annotations

import csv
import math
import os

import pytest

from tests.conftest import TINY_AGENT
from tfa_suite.catalog import agent_names
from tfa_suite.policy.episodes import run_episodes
from tfa_suite.policy.saved import SavedPolicy
from tfa_suite.run.train import train


def test_every_registered_agent_has_a_tiny_config():
    # A new agent must add its tiny run to conftest's TINY_AGENT, so the test below runs it.
    assert sorted(TINY_AGENT) == agent_names()


@pytest.mark.parametrize("agent", agent_names())
def test_tiny_run_of_every_agent(agent, tmp_path, tiny_config):
    config = tiny_config(tmp_path / agent, agent=agent)
    result = train(config)
    run = config.run
    assert result.env_steps >= run.num_env_steps
    assert result.train_steps > 0
    with open(tmp_path / agent / "metrics.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["loss"]]
    # A row every 100 env steps (each within one iteration or rollout past its multiple).
    assert len(rows) >= run.num_env_steps // run.metrics_interval
    assert all(math.isfinite(float(r["loss"])) for r in rows)
    checkpoints = os.listdir(tmp_path / agent / "checkpoints")
    assert f"ckpt-{result.env_steps}.index" in checkpoints
    policy = SavedPolicy(str(tmp_path / agent / "policy"))
    assert not os.path.exists(tmp_path / agent / "policy_sampled")  # only when asked
    assert policy.train_step == result.train_steps
    stats = run_episodes(policy, policy.env_spec, run.eval_episodes, seed=run.eval_seed)
    assert stats.mean == pytest.approx(result.final_eval_mean, abs=1e-6)
