"""--export_sampled_policy: a policy gradient's sampling policy exported beside the greedy one.

The sampling policy is the one that collects, and the one Karpathy's "Pong from Pixels"
scores; the run's own export (policy/) plays its mode.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from tfa_suite.catalog import make_config
from tfa_suite.errors import UserError
from tfa_suite.policy.episodes import run_episodes
from tfa_suite.policy.saved import SavedPolicy
from tfa_suite.run.train import train


@pytest.mark.parametrize("agent", ["reinforce", "a2c", "ppo"])
def test_the_sampled_policy_is_exported_and_plays(agent, tmp_path, tiny_config):
    result = train(tiny_config(tmp_path, agent=agent, export_sampled_policy=True))
    sampled = SavedPolicy(str(tmp_path / "policy_sampled"))
    assert sampled.train_step == result.train_steps
    assert sampled.env_spec == SavedPolicy(str(tmp_path / "policy")).env_spec
    stats = run_episodes(sampled, sampled.env_spec, 2, seed=0)
    assert len(stats.returns) == 2 and all(math.isfinite(r) for r in stats.returns)


def test_the_sampled_export_samples_where_the_greedy_export_does_not(tmp_path, tiny_config):
    # After 400 env steps REINFORCE's policy is still near uniform over CartPole's two
    # actions: 256 copies of one observation get both actions from the sampled policy (a
    # chance of about 2 * 0.5**256 otherwise), and one action from the greedy one.
    train(tiny_config(tmp_path, agent="reinforce", export_sampled_policy=True))
    greedy = SavedPolicy(str(tmp_path / "policy"))
    sampled = SavedPolicy(str(tmp_path / "policy_sampled"))
    observations = np.tile(np.array([[0.01, -0.02, 0.03, 0.01]], np.float32), (256, 1))
    assert len(set(greedy(observations).tolist())) == 1
    assert set(sampled(observations).tolist()) == {0, 1}


def test_an_agent_without_a_sampling_policy_refuses_the_flag():
    with pytest.raises(UserError, match="export_sampled_policy") as error:
        make_config(agent="dqn", export_sampled_policy=True)
    assert "\n" not in str(error.value)


def test_a_resumed_run_may_ask_for_the_sampled_export(tmp_path, tiny_config):
    # What a run exports is not part of its experiment, so a rerun that resumes it may add it.
    train(tiny_config(tmp_path, agent="reinforce"))
    assert not (tmp_path / "policy_sampled").exists()
    result = train(
        tiny_config(tmp_path, agent="reinforce", num_env_steps=600, export_sampled_policy=True)
    )
    assert result.resumed_from_env_steps >= 400
    assert SavedPolicy(str(tmp_path / "policy_sampled")).train_step == result.train_steps
