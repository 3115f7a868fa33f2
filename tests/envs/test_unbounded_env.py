"""An env with no time limit: named at the start, and its evaluation episodes are cut."""

import tfa_suite  # noqa: F401  isort: skip

import numpy as np

from tfa_suite.catalog import make_config
from tfa_suite.envs.loading import EnvSpec
from tfa_suite.envs.training_env import warn_if_unbounded
from tfa_suite.policy.episodes import run_episodes
from tfa_suite.run.train import train

NEVER_ENDING = "tests.envs_for_tests:NeverEndingEnv"


def test_an_env_without_a_time_limit_is_named_at_the_start(capsys):
    warn_if_unbounded(EnvSpec(NEVER_ENDING))
    out = capsys.readouterr().out
    assert "registers no time limit and is not wrapped in a TimeLimit" in out
    assert "--max_episode_steps" in out


def test_the_note_says_only_what_is_known_of_an_env_that_truncates_itself(capsys):
    # Nothing outside the env can see that it truncates its own episodes: the note says
    # what is known (no registered limit, no TimeLimit wrapper), not that it has none.
    warn_if_unbounded(EnvSpec("tests.envs_for_tests:SelfTruncatingEnv"))
    out = capsys.readouterr().out
    assert "registers no time limit and is not wrapped in a TimeLimit" in out
    assert "unless it truncates its own episodes" in out
    assert "has no time limit" not in out


def test_envs_with_a_time_limit_get_no_note(capsys):
    for spec in (
        EnvSpec("CartPole-v1"),  # registered with max_episode_steps
        EnvSpec(NEVER_ENDING, max_episode_steps=5),  # --max_episode_steps
        EnvSpec("tests.envs_for_tests:make_truncated_env"),  # the factory wraps a TimeLimit
    ):
        warn_if_unbounded(spec)
    assert capsys.readouterr().out == ""


def test_evaluation_cuts_endless_episodes_and_counts_them():
    stats = run_episodes(lambda obs: np.zeros(len(obs), np.int64), EnvSpec(NEVER_ENDING), 3, 0, 40)
    assert stats.cut == 3
    assert stats.lengths.tolist() == [40, 40, 40]
    assert stats.returns.tolist() == [40.0, 40.0, 40.0]  # reward 1 per step, cut at 40
    ended = run_episodes(
        lambda obs: np.zeros(len(obs), np.int64), EnvSpec(NEVER_ENDING, max_episode_steps=7), 2, 0
    )
    assert ended.cut == 0 and ended.lengths.tolist() == [7, 7]


def test_a_run_on_an_endless_env_finishes_and_reports_the_cut_episodes(tmp_path, capfd):
    result = train(
        make_config(
            env=NEVER_ENDING,
            root_dir=str(tmp_path / "run"),
            fc_layers=[8],
            initial_collect_steps=64,
            batch_size=16,
            num_env_steps=200,
            eval_interval=100,
            eval_episodes=2,
            eval_max_episode_steps=30,
            video_episodes=0,
            log_interval_seconds=0.01,
        )
    )
    out = capfd.readouterr().out  # progress lines go to the process's own stdout
    assert "registers no time limit and is not wrapped in a TimeLimit" in out
    assert out.count("(2 cut at --eval_max_episode_steps=30") == 2  # both evaluations
    assert "over 2 episodes (2 cut at --eval_max_episode_steps)" in out  # the export's
    assert result.final_eval_mean == 30.0  # the exported policy's episodes were cut too
