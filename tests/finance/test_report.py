"""The finance run end to end: training writes every output, and the baseline report.

One tiny DDPG run on `--env=finance` (module fixture) feeds the report tests, which score
its real exported policy against the baselines on a few lives.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from tfa_suite.catalog import make_config
from tfa_suite.errors import UserError
from tfa_suite.finance.params import MONTHS, FinanceParams
from tfa_suite.finance.report import (
    REPORT_FILES,
    Outcome,
    fixed,
    grid_search,
    mortgage_first,
    simplex_grid,
    simulate,
    summarize,
)
from tfa_suite.run.train import train

RUN_OUTPUTS = ("checkpoints", "policy", "summaries", "metrics.csv", "config.json",
               "learning_curve.png", "video.mp4")  # fmt: skip


@pytest.fixture(scope="module")
def finance_run(tmp_path_factory, tiny_config):
    root = tmp_path_factory.mktemp("finance") / "ddpg"
    config = tiny_config(
        root, agent="ddpg", backend="python", env="finance", num_env_steps=200,
        eval_interval=0, eval_episodes=2, video_episodes=1,
    )  # fmt: skip
    return root, train(config)


def test_finance_run_writes_every_output_and_plays_whole_lives(finance_run):
    root, result = finance_run
    for name in RUN_OUTPUTS:
        assert (root / name).exists(), name
    saved = json.loads((root / "config.json").read_text())
    assert saved["run"]["env"] == "finance"
    # The final evaluation plays whole lives on the gymnasium view: 744 months each.
    assert result.env_steps >= 200 and np.isfinite(result.final_eval_mean)
    assert (root / "video.mp4").stat().st_size > 10_000


def test_simplex_grid_is_every_allocation_summing_to_one():
    grid = simplex_grid(0.1)
    assert grid.shape == (286, 4)  # C(13, 3) compositions of 10 into 4 parts
    np.testing.assert_allclose(grid.sum(axis=1), 1.0)
    assert grid.min() >= 0 and len({tuple(np.round(r, 6)) for r in grid}) == 286
    assert simplex_grid(0.5).shape == (10, 4)
    for step in (0.3, 0.0, float("nan"), 0.01, 2.0):
        with pytest.raises(UserError, match="grid_step"):
            simplex_grid(step)


def test_grid_search_matches_playing_each_allocation_alone():
    """The batched search (all allocations tiled into one batch) must pick the same
    allocation, with the same mean, as playing each allocation on its own."""
    params, seeds = FinanceParams(), np.arange(5)
    best, mean = grid_search(params, seeds, 0.5)
    means = [simulate(fixed(w), params, seeds, "").gain.mean() for w in simplex_grid(0.5)]
    assert mean == pytest.approx(max(means), rel=1e-12)
    np.testing.assert_array_equal(best, simplex_grid(0.5)[int(np.argmax(means))])


def test_simulate_records_real_net_worth_for_every_month():
    outcome = simulate(fixed([0.0, 2.0, 0.0, 0.0]), FinanceParams(), np.arange(3), "tax")
    assert outcome.real_net_worth.shape == (3, MONTHS + 1)
    np.testing.assert_allclose(outcome.shares, np.tile([0.0, 1.0, 0.0, 0.0], (MONTHS, 1)))
    # A 10% deposit on a house of 3-5x a 30-70k salary: 9k to 35k at 18.
    assert np.all((outcome.real_net_worth[:, 0] > 9_000) & (outcome.real_net_worth[:, 0] < 35_000))


def test_mortgage_first_switches_to_saving_when_the_loan_is_paid():
    outcome_rule = simulate(mortgage_first, FinanceParams(unemployment_rate=0), np.arange(4), "")
    outcome_fixed = simulate(
        fixed([1, 0, 0, 0]), FinanceParams(unemployment_rate=0), np.arange(4), ""
    )
    # Identical while the loan lasts, better after it (tax-advantaged saving beats the
    # taxable account that overpayments spill into).
    np.testing.assert_allclose(
        outcome_rule.real_net_worth[:, :24], outcome_fixed.real_net_worth[:, :24]
    )
    assert np.all(outcome_rule.gain > outcome_fixed.gain)


def test_summary_uses_the_paired_difference():
    worth = np.zeros((4, MONTHS + 1))
    ref = Outcome("ref", worth.copy(), np.zeros(4, bool))
    worth[:, -1] = np.array([1.0, 2.0, 3.0, 6.0]) * 1e6
    ref.real_net_worth[:, -1] = np.array([0.5, 1.5, 2.5, 5.5]) * 1e6
    rule = Outcome("rule", np.zeros((4, MONTHS + 1)), np.zeros(4, bool))
    rule.real_net_worth[:, -1] = np.array([1.0, 1.0, 4.0, 4.0]) * 1e6
    row = summarize(Outcome("x", worth, np.array([True, False, False, False])), ref, rule)
    assert row["mean_gain"] == pytest.approx(3.0)
    assert row["se"] == pytest.approx(np.std([1, 2, 3, 6], ddof=1) / 2)
    assert row["vs_best_fixed"] == pytest.approx(0.5)
    assert row["vs_best_fixed_se"] == pytest.approx(0.0, abs=1e-12)  # the same gap every life
    # Against the rule the gaps are 0, 1, -1, 2: a mean of 0.5 with their own error.
    assert row["vs_best_rule"] == pytest.approx(0.5)
    assert row["vs_best_rule_se"] == pytest.approx(np.std([0, 1, -1, 2], ddof=1) / 2)
    assert row["foreclosed"] == pytest.approx(0.25)


def test_report_scores_the_policy_and_refuses_to_overwrite(finance_run, binaries):
    root, _ = finance_run
    args = (f"--root_dir={root}", "--lives=4", "--grid_step=0.5")
    proc = binaries.run("experiments/finance_report.py", *args)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in REPORT_FILES:
        assert (root / name).is_file(), name
    report = json.loads((root / "finance_report.json").read_text())
    names = [r["policy"] for r in report["rows"]]
    assert names[0] == "ddpg" and names[1].startswith("best fixed") and len(names) == 6
    assert names[2].startswith("keep ") and "(best rule)" in names[2]
    assert report["rows"][1]["vs_best_fixed"] == 0.0 and report["rows"][2]["vs_best_rule"] == 0.0
    gains = report["liquid_months_selection_gains"]
    assert list(gains) == ["0", "1", "2", "3", "4", "6", "9", "12", "18", "24"]
    assert gains[f"{report['best_rule_liquid_months']:g}"] == max(gains.values())
    assert report["signal_to_noise"]["monthly_change_std"] > 0
    decades = report["learned_shares_by_age"]
    assert [d["ages"] for d in decades] == [
        "18-28",
        "28-38",
        "38-48",
        "48-58",
        "58-68",
        "68-78",
        "78-80",
    ]
    for d in decades:
        assert sum(
            d[n] for n in ("extra_mortgage", "tax_advantaged", "taxable", "luxury")
        ) == pytest.approx(1)
    assert "| ddpg |" in proc.stdout

    from tfa_suite.finance.report import report

    with pytest.raises(UserError, match="--overwrite"):
        report(str(root), lives=4, grid_step=0.5)
    rows = report(str(root), lives=4, grid_step=0.5, overwrite=True, log=lambda line: None)
    assert [r["policy"] for r in rows] == names


def test_report_refuses_a_run_that_is_not_finance(tmp_path, tiny_config):
    root = tmp_path / "cartpole"
    train(tiny_config(root, agent="dqn"))
    from tfa_suite.finance.report import report

    with pytest.raises(UserError, match="not finance"):
        report(str(root), lives=4, grid_step=0.5)
    with pytest.raises(UserError, match="does not exist"):
        report(str(tmp_path / "nope"))


def test_a_bad_finance_flag_is_one_line_from_the_binary(tmp_path, binaries):
    proc = binaries.run(
        "experiments/train.py", "--agent=ddpg", "--env=finance", f"--root_dir={tmp_path / 'r'}",
        "--num_env_steps=100", '--env_kwargs={"salary": 1}',
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "has no parameter salary" in last
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "fields, message",
    [
        (dict(env_kwargs='{"mortgage_rate": -0.1}'), "mortgage_rate must be >= 0"),
        (dict(max_episode_steps=100), "does not apply to --env=finance"),
        (dict(env_kwargs='{"seed": 1}'), "no parameter seed"),
        (dict(backend="graph"), "needs a TF-native environment"),
    ],
)
def test_bad_finance_settings_are_refused_before_the_root_dir(tmp_path, fields, message):
    config = make_config(
        agent="ddpg", env="finance", root_dir=str(tmp_path / "r"), num_env_steps=100, **fields
    )
    with pytest.raises(UserError, match=re.escape(message)):
        train(config)
    assert not (tmp_path / "r").exists()


IMPROVED_SETUP = {
    "decision_months": 12,
    "reward_baseline": "tax_advantaged",
    "liquidity_features": True,
    "weight_floor": 0.05,
}


@pytest.mark.parametrize("agent", ["ddpg", "td3", "sac", "ppo"])
def test_finance_configs_parse_on_the_improved_setup(agent, binaries):
    """Every `make train-finance AGENT=...` config is valid and trains on the same setup."""
    from tfa_suite.flags import config_from_flagfile

    path = binaries.repo / "experiments" / "configs" / f"finance_{agent}.cfg"
    config = config_from_flagfile(str(path))
    assert (config.run.agent, config.run.env) == (agent, "finance")
    assert json.loads(config.run.env_kwargs) == IMPROVED_SETUP


def test_the_course_config_keeps_the_course_setup(binaries):
    """finance_ddpg_course.cfg reproduces results/finance_ddpg-seed0: monthly, plain reward."""
    from tfa_suite.flags import config_from_flagfile

    path = binaries.repo / "experiments" / "configs" / "finance_ddpg_course.cfg"
    config = config_from_flagfile(str(path))
    assert config.run.env_kwargs == "" and config.agent.gamma == 0.995
    assert config.agent.actor_layers == [400, 300] and config.agent.critic_layers == [300]


@pytest.mark.parametrize(
    "agent",
    [
        "ddpg",
        pytest.param("td3", marks=pytest.mark.slow),
        pytest.param("sac", marks=pytest.mark.slow),
    ],
)
def test_a_few_steps_of_each_finance_config_train(agent, tmp_path, binaries):
    # DDPG's run shows the finance env trains on the replay loop; TD3's and SAC's agents
    # are trained end to end on Pendulum by tests/run/test_every_agent.py.
    from tfa_suite.flags import config_from_flagfile

    path = binaries.repo / "experiments" / "configs" / f"finance_{agent}.cfg"
    short = config_from_flagfile(str(path)).replace(
        root_dir=str(tmp_path / agent), num_env_steps=64, initial_collect_steps=32,
        batch_size=16, eval_interval=0, eval_episodes=1, video_episodes=0,
        checkpoint_interval=64, metrics_interval=32,
    )  # fmt: skip
    assert train(short).env_steps >= 64


def test_evaluate_plays_the_exported_finance_policy_in_a_fresh_process(finance_run, binaries):
    root, result = finance_run
    scores = root.parent / "eval.json"
    proc = binaries.run(
        "experiments/evaluate.py", f"--policy_dir={root / 'policy'}", "--episodes=2",
        f"--seed={result_eval_seed(root)}", f"--json={scores}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads(scores.read_text())
    # The same two lives as the run's final evaluation, so the same greedy score.
    assert record["mean"] == pytest.approx(result.final_eval_mean, abs=1e-4)


def result_eval_seed(root) -> int:  # noqa: ANN001
    from tfa_suite.config import EVAL_SEED_OFFSET

    return json.loads((root / "config.json").read_text())["run"]["seed"] + EVAL_SEED_OFFSET


def test_signal_to_noise_by_hand():
    from tfa_suite.finance.report import signal_to_noise

    months = np.arange(MONTHS + 1, dtype=float)
    best = Outcome(
        "best", np.stack([100 * months, 100 * months + 50 * (months % 2)]), np.zeros(2, bool)
    )
    learned = Outcome("learned", best.real_net_worth - 3 * months, np.zeros(2, bool))
    signal = signal_to_noise(learned, best)
    # Monthly changes: 100 every month for life 0; 150, 50, 150, ... for life 1.
    changes = np.concatenate(
        [np.full(MONTHS, 100.0), 100 + 50 * np.where(np.arange(MONTHS) % 2 == 0, 1, -1)]
    )
    assert signal["monthly_change_std"] == pytest.approx(changes.std())
    assert signal["monthly_gap_mean"] == pytest.approx(-3.0)
