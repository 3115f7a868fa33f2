"""`make train-pong-pg` and `make train-pong-ppo`: the shipped Pong configs train from raw
ALE frames and export both policies, in a fresh process as the make targets run them.

Slow tier: one update of pong_pg.cfg collects a whole rollout (8 envs x 2,048 steps)."""

from __future__ import annotations

import json
import os

import pytest

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    "config, env_steps, train_steps",
    [
        # one rollout of 8 x 2,048 steps, one REINFORCE update (TF-Agents' EnvironmentSteps
        # leaves out the boundary step between two games: a rollout counts under 16,384)
        ("pong_pg.cfg", 16_000, 1),
        ("pong_ppo.cfg", 1_024, 16),  # one rollout: 4 epochs of 4 minibatches
    ],
)
def test_a_shipped_pong_config_trains_and_exports(
    binaries, tmp_path, config, env_steps, train_steps
):
    done = binaries.run(
        "experiments/train.py",
        f"--flagfile=experiments/configs/{config}",
        f"--root_dir={tmp_path}",
        f"--num_env_steps={env_steps}",
        "--eval_interval=0",
        "--video_episodes=0",
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["env_steps"] >= env_steps and result["train_steps"] == train_steps
    for export in ("policy", "policy_sampled"):
        assert os.path.isfile(tmp_path / export / "saved_model.pb"), export
