"""Does it learn? The shipped configs, run for real with fixed seeds and a return threshold.

Every test here is a solve, so the whole module is the slow tier (`make test-slow`).
"""

import tfa_suite  # noqa: F401  isort: skip

import os

import pytest

from tfa_suite.config import EVAL_SEED_OFFSET
from tfa_suite.flags import config_from_flagfile
from tfa_suite.policy.episodes import run_episodes
from tfa_suite.policy.saved import SavedPolicy
from tfa_suite.run.train import train

pytestmark = pytest.mark.slow

CONFIGS = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    "experiments",
    "configs",
)


def solve_cartpole(tmp_path, seed: int, **overrides):
    config = config_from_flagfile(
        os.path.join(CONFIGS, "cartpole.cfg"),
        seed=seed,
        root_dir=str(tmp_path / "run"),
        video_episodes=0,
        **overrides,
    )
    result = train(config)
    assert result.solved, f"seed {seed} did not reach 475: evals {result.evaluations}"
    # The number the early stop saw is reproduced by the exported SavedModel.
    assert result.final_eval_mean >= 475.0
    policy = SavedPolicy(os.path.join(result.root_dir, "policy"))
    stats = run_episodes(policy, policy.env_spec, 10, seed=seed + EVAL_SEED_OFFSET)
    assert stats.mean == pytest.approx(result.final_eval_mean)
    return result


def test_default_cartpole_config_solves_seed_0(tmp_path):
    result = solve_cartpole(tmp_path, seed=0)
    assert result.env_steps < 100_000


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_default_cartpole_config_solves_more_seeds(tmp_path, seed):
    result = solve_cartpole(tmp_path, seed=seed)
    assert result.solved_at_env_steps is not None and result.env_steps < 150_000


@pytest.mark.slow
def test_cartpole_solves_with_the_gymnasium_environment(tmp_path):
    result = solve_cartpole(tmp_path, seed=0, backend="python")
    assert result.solved


@pytest.mark.slow
def test_tf_agents_tutorial_setup_learns_cartpole_v0(tmp_path):
    config = config_from_flagfile(
        os.path.join(CONFIGS, "cartpole_tutorial_v0.cfg"),
        root_dir=str(tmp_path / "run"),
        video_episodes=0,
    )
    result = train(config)
    best = max(e["mean"] for e in result.evaluations)
    # The tutorial reaches CartPole-v0's maximum of 200; demand a clear solve (>= 195).
    assert best >= 195.0, result.evaluations


def solve_pendulum(tmp_path, agent: str, seed: int):
    config = config_from_flagfile(
        os.path.join(CONFIGS, f"pendulum_{agent}.cfg"),
        seed=seed,
        root_dir=str(tmp_path / "run"),
        video_episodes=0,
    )
    result = train(config)
    assert result.solved, f"{agent} seed {seed} did not reach -200: evals {result.evaluations}"
    # The gymnasium evaluation that solved it is reproduced by the exported SavedModel.
    assert result.final_eval_mean >= -200.0
    policy = SavedPolicy(os.path.join(result.root_dir, "policy"))
    stats = run_episodes(policy, policy.env_spec, 10, seed=seed + EVAL_SEED_OFFSET)
    assert stats.mean == pytest.approx(result.final_eval_mean)
    return result


def test_sac_pendulum_config_solves_seed_2(tmp_path):
    # About 20 s on 2 cores: SAC on the compiled TF Pendulum, checked on gymnasium.
    result = solve_pendulum(tmp_path, "sac", seed=2)
    assert result.env_steps <= 20_000


@pytest.mark.slow
@pytest.mark.parametrize(
    "agent, seed",
    [("sac", 0), ("sac", 1), ("td3", 0), ("td3", 1), ("td3", 2), ("ddpg", 0), ("ddpg", 1)],
)
def test_pendulum_configs_solve_more_seeds(tmp_path, agent, seed):
    result = solve_pendulum(tmp_path, agent, seed)
    assert result.solved_at_env_steps is not None and result.env_steps <= 30_000
