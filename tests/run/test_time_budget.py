"""--max_train_minutes: a run that stops on its wall-clock budget ends as at its length.

Comparing two algorithms on the same machine for the same time (the Pong PG-vs-PPO run)
needs a budget in minutes. It counts the run's wall time over every resumed segment,
metrics.csv's total_wall_seconds.
"""

from __future__ import annotations

import io
import json
import math

import pytest

from tfa_suite import config as config_lib
from tfa_suite.catalog import make_config
from tfa_suite.errors import UserError
from tfa_suite.policy.saved import SavedPolicy
from tfa_suite.run.reporting import Progress, read_metrics, total_seconds
from tfa_suite.run.train import train

NEVER = 10_000_000  # env steps a tiny run would not reach in minutes
BUDGET_MINUTES = 0.03  # 1.8 s, less than a tiny run's build and first compiled call


def test_a_run_stops_on_its_time_budget_and_exports(tmp_path, tiny_config):
    result = train(tiny_config(tmp_path, num_env_steps=NEVER, max_train_minutes=BUDGET_MINUTES))
    assert 0 < result.env_steps < NEVER
    assert result.stopped_by_signal is None and result.stopped_early is None
    assert result.total_wall_seconds >= 60 * BUDGET_MINUTES
    # It ends as a run that reached its length does: export, final score, result.json, and
    # a last metrics row at the step where it stopped.
    assert SavedPolicy(str(tmp_path / "policy")).train_step == result.train_steps
    assert math.isfinite(result.final_eval_mean)
    assert json.loads((tmp_path / "result.json").read_text())["env_steps"] == result.env_steps
    rows = read_metrics(str(tmp_path / "metrics.csv"))
    assert int(rows[-1]["env_steps"]) == result.env_steps
    assert rows[-1]["total_wall_seconds"] >= 60 * BUDGET_MINUTES


def test_the_same_budget_is_complete_and_a_larger_one_resumes(tmp_path, tiny_config, capsys):
    config = tiny_config(tmp_path, num_env_steps=NEVER, max_train_minutes=BUDGET_MINUTES)
    first = train(config)
    capsys.readouterr()
    again = train(config)
    assert "already complete" in capsys.readouterr().out
    assert again.env_steps == first.env_steps
    # A budget beyond the time the run has trained (its last metrics row, however slow the
    # machine) resumes it.
    trained = total_seconds(read_metrics(str(tmp_path / "metrics.csv")))
    budget = (trained + 2.0) / 60
    longer = train(config.replace(max_train_minutes=budget))
    assert longer.resumed_from_env_steps == first.env_steps
    assert longer.env_steps > first.env_steps
    assert longer.total_wall_seconds >= 60 * budget


def test_the_eta_is_the_sooner_of_the_length_and_the_budget():
    # 9,000 env steps left at 100/s is 1m30s; a budget with 40 s left ends the run first.
    def eta(seconds_left):  # noqa: ANN001, ANN202
        progress = Progress(10_000, 0, stream=io.StringIO(), seconds_left=seconds_left)
        return progress.line(1_000, 100.0, 0.5, {}, -20.0).rsplit("| ", 1)[1]

    assert eta(None) == "ETA 1m30s"
    assert eta(lambda: 40.0) == "ETA 40s (time budget)"
    assert eta(lambda: 600.0) == "ETA 1m30s"
    assert eta(lambda: -5.0) == "ETA 0s (time budget)"  # spent: the run stops at its next check


def test_no_budget_trains_to_the_length(tmp_path, tiny_config):
    result = train(tiny_config(tmp_path, max_train_minutes=0))
    assert result.env_steps >= 400


@pytest.mark.parametrize("minutes", [-1.0, math.nan, math.inf])
def test_a_bad_budget_is_refused_in_one_line(minutes):
    with pytest.raises(UserError, match="--max_train_minutes must be ") as error:
        config_lib.validate(make_config(agent="dqn", max_train_minutes=minutes))
    assert "\n" not in str(error.value)
