"""The Python API: train, load, evaluate, film, resume and refuse, as a notebook user would."""

from __future__ import annotations

import os

import numpy as np
import pytest

import tfa_suite
from tfa_suite.errors import UserError


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_config):
    root = tmp_path_factory.mktemp("api") / "cartpole"
    fields = tiny_config(root, agent="dqn", eval_interval=200, video_episodes=1).flat()
    return fields, tfa_suite.train(**fields)


def test_train_returns_figures_paths_and_the_loaded_policy(run):
    fields, result = run
    assert result.env_steps >= fields["num_env_steps"] and result.train_steps > 0
    assert result.root_dir == fields["root_dir"]
    for name in ("config", "flags", "metrics", "checkpoints", "policy", "learning_curve",
                 "video", "result"):  # fmt: skip
        assert os.path.exists(result.paths[name]), name
    assert isinstance(result.policy, tfa_suite.Policy)
    rows = result.metrics()
    assert rows and rows[-1]["env_steps"] == result.env_steps


def test_the_policy_scores_what_the_run_reported_on_its_seeds(run):
    fields, result = run
    scores = result.policy.evaluate(
        episodes=fields["eval_episodes"], seed=fields["seed"] + tfa_suite.api.EVAL_SEED_OFFSET
    )
    assert scores.mean == pytest.approx(result.final_eval_mean, abs=1e-6)
    assert len(scores.returns) == fields["eval_episodes"] and scores.std >= 0
    assert "over 2 episodes" in str(scores)


def test_load_policy_takes_the_run_dir_or_its_policy_dir(run):
    _, result = run
    for path in (result.root_dir, os.path.join(result.root_dir, "policy")):
        policy = tfa_suite.load_policy(path)
        assert policy.env_spec.env == "CartPole-v1"
        assert policy.train_step == result.train_steps
    obs = np.zeros(4, np.float32)
    assert policy.action(obs) in (0, 1)
    assert policy.action(np.stack([obs, obs])).shape == (2,)
    with pytest.raises(UserError, match=r"observation of shape \(3,\) does not fit"):
        policy.action(np.zeros(3, np.float32))
    with pytest.raises(UserError, match="episodes must be >= 1"):
        policy.evaluate(episodes=0)


def test_video_writes_an_mp4_and_never_overwrites_by_accident(run, tmp_path):
    _, result = run
    path = tmp_path / "clip.mp4"
    assert result.policy.video(path) == str(path) and path.stat().st_size > 0
    with pytest.raises(UserError, match="exists; pass overwrite=True"):
        result.policy.video(path)
    with pytest.raises(UserError, match="must name a .mp4 file"):
        result.policy.video(tmp_path / "clip.gif")


def test_train_again_on_the_same_root_dir_resumes(run, tmp_path, tiny_config):
    import shutil

    fields, first = run
    root = tmp_path / "copy"
    shutil.copytree(first.root_dir, root)
    again = tfa_suite.train(**{**fields, "root_dir": str(root), "num_env_steps": 600})
    assert again.resumed_from_env_steps == first.env_steps
    assert again.env_steps >= 600


def test_a_field_the_agent_does_not_take_is_refused_with_the_flags_message(tmp_path):
    with pytest.raises(UserError) as info:
        tfa_suite.train(agent="sac", env="Pendulum-v1", root_dir=tmp_path / "r", epsilon_start=0.5)
    assert str(info.value).startswith("--epsilon_start does not apply to --agent=sac")
    assert not (tmp_path / "r").exists()


def test_flagfile_fields_apply_and_arguments_override_them(tmp_path):
    flagfile = tmp_path / "mine.cfg"
    flagfile.write_text("--agent=ppo\n--env=Pendulum-v1\n--num_envs=4\n--rollout_steps=64\n")
    config = tfa_suite.make_config(flagfile=flagfile, seed=3, rollout_steps=16)
    assert (config.run.agent, config.run.env, config.run.seed) == ("ppo", "Pendulum-v1", 3)
    assert config.run.num_envs == 4 and config.loop.rollout_steps == 16
    with pytest.raises(UserError, match="flagfile .* does not exist"):
        tfa_suite.make_config(flagfile=tmp_path / "missing.cfg")
    # Without a flagfile or an agent: the suite's default, DQN on CartPole-v1.
    assert tfa_suite.make_config().run.agent == "dqn"


def test_importing_the_package_imports_no_tensorflow():
    import subprocess
    import sys

    code = "import sys, tfa_suite; sys.exit('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
