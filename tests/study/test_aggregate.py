"""experiments/aggregate.py and tfa_suite.study.aggregate: the intervals come from rliable on
the runs' own files, a group is an agent on an env, and bad input is one line."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("rliable")

from tfa_suite.errors import UserError  # noqa: E402
from tfa_suite.run.train import train  # noqa: E402
from tfa_suite.study.aggregate import (  # noqa: E402
    aggregate,
    interval_estimates,
    load_run,
    probability_of_improvement,
)


def test_the_iqm_is_the_mean_of_the_middle_half_and_its_interval_holds_it():
    # Five runs: the IQM drops the lowest and the highest, so the outlier 100 does not
    # move it, while the mean (22) does.
    scores = {"a": np.array([[1.0], [2.0], [3.0], [4.0], [100.0]])}
    est = interval_estimates(scores)["a"]
    assert est["iqm"] == pytest.approx(3.0)
    assert est["median"] == pytest.approx(3.0)
    assert est["iqm_ci"][0] <= 3.0 <= est["iqm_ci"][1]
    assert est["iqm_ci"][1] > est["iqm_ci"][0]  # resampling five distinct runs varies it
    assert est["runs"] == 5


def test_probability_of_improvement_orders_two_groups():
    better = np.array([[10.0], [11.0], [12.0]])
    worse = np.array([[1.0], [2.0], [3.0]])
    assert probability_of_improvement(better, worse)["probability"] == pytest.approx(1.0)
    assert probability_of_improvement(worse, better)["probability"] == pytest.approx(0.0)
    tied = probability_of_improvement(better, better)
    assert tied["probability"] == pytest.approx(0.5)
    assert tied["ci"][0] <= 0.5 <= tied["ci"][1]


@pytest.fixture(scope="module")
def finished_runs(tmp_path_factory, tiny_config):
    """Two seeds of a tiny real DQN run, and copies of them relabelled as a second agent
    with known final scores, so the table's figures can be checked exactly."""
    base = tmp_path_factory.mktemp("agg")
    dirs = []
    for seed in (0, 1):
        root = base / f"dqn-seed{seed}"
        train(tiny_config(root, agent="dqn", seed=seed, eval_interval=32, eval_episodes=1))
        dirs.append(root)
    for seed, score in ((0, 300.0), (1, 500.0)):
        root = base / f"other-seed{seed}"
        shutil.copytree(dirs[seed], root)
        config = json.loads((root / "config.json").read_text())
        config["run"]["agent"] = "c51"
        (root / "config.json").write_text(json.dumps(config))
        result = json.loads((root / "result.json").read_text())
        result["final_eval_mean"] = score
        (root / "result.json").write_text(json.dumps(result))
        dirs.append(root)
    return dirs


def test_aggregate_writes_the_tables_and_plots_from_the_run_files(finished_runs, tmp_path):
    summary = aggregate([str(d) for d in finished_runs], str(tmp_path / "out"))
    dqn_scores = [load_run(str(d)).score for d in finished_runs[:2]]
    groups = summary["groups"]
    assert set(groups) == {"dqn on CartPole-v1", "c51 on CartPole-v1"}
    assert groups["c51 on CartPole-v1"]["iqm"] == pytest.approx(400.0)
    assert groups["dqn on CartPole-v1"]["mean"] == pytest.approx(np.mean(dqn_scores))
    (pair,) = summary["improvements"]
    assert {pair["x"], pair["y"]} == set(groups)
    curve = summary["curves"]["dqn on CartPole-v1"]
    assert len(curve["env_steps"]) == len(curve["iqm"]) >= 2
    for name in (
        "aggregate.json",
        "aggregate.md",
        "interval_estimates.png",
        "sample_efficiency.png",
    ):
        assert (tmp_path / "out" / name).stat().st_size > 0, name
    assert "| c51 on CartPole-v1 | 2 |" in (tmp_path / "out" / "aggregate.md").read_text()
    with pytest.raises(UserError, match="pass --overwrite"):
        aggregate([str(d) for d in finished_runs], str(tmp_path / "out"))


@pytest.mark.parametrize(
    "args, message",
    [
        (["{run}"], "--out is required"),
        (["--out={out}", "{missing}"], "is not a finished run (config.json, result.json missing)"),
        (["--out={out}"], "name at least one run dir"),
    ],
)
def test_bad_input_is_one_line(args, message, finished_runs, tmp_path, binaries):
    fill = {"run": finished_runs[0], "out": tmp_path / "o", "missing": tmp_path / "nope"}
    proc = binaries.run("experiments/aggregate.py", *(a.format(**fill) for a in args))
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr[-2000:]
    assert not (tmp_path / "o" / "aggregate.json").exists()
