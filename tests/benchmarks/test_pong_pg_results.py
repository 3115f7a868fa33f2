"""benchmarks/pong_pg_results.py without training: the flags it gives train.py, its figures
from a run's files, its report and export, and its one-line refusals."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest
from absl import flags as absl_flags

from tests.benchmarks import BENCHMARKS, import_benchmarks

REPO = BENCHMARKS.parent


@pytest.fixture(scope="module")
def results():
    (pong_pg_results,) = import_benchmarks("pong_pg_results")
    return pong_pg_results


HEADER = (
    "env_steps,train_steps,wall_seconds,total_wall_seconds,env_steps_per_sec,loss,"
    "train_return,eval_mean,eval_std\n"
)


def write_run(
    root: pathlib.Path,
    rows: list[str],
    agent: str,
    result: dict | None,
    num_env_steps: int = 5_000_000,
    max_train_minutes: float = 0.0,
) -> None:
    root.mkdir(parents=True)
    (root / "metrics.csv").write_text(HEADER + "".join(r + "\n" for r in rows))
    run = {"env": "ALE/Pong-v5", "agent": agent, "seed": 0, "num_env_steps": num_env_steps}
    config = {"run": {**run, "max_train_minutes": max_train_minutes}}
    (root / "config.json").write_text(json.dumps(config))
    if result is not None:
        (root / "result.json").write_text(json.dumps(result))


def parsed_config(argv: list[str]):
    """What train.py would train with these flags (parsed and validated by the library)."""
    import tfa_suite  # noqa: F401  (Keras 2 before TensorFlow)
    from tfa_suite.config import validate
    from tfa_suite.flags import config_from_flags, define_flags

    values = absl_flags.FlagValues()
    define_flags(values)
    values(["train.py", *(a.replace("=experiments/", f"={REPO}/experiments/") for a in argv)])
    config = config_from_flags(values)
    validate(config)
    return config


def test_the_training_flags_are_the_shipped_configs_with_their_ends(results, tmp_path):
    args = results.parse_args(["--cap=4000000", "--target=17"])
    pg = parsed_config(results.pg_argv(args, tmp_path, seed=2)).run
    assert (pg.agent, pg.seed, pg.num_env_steps) == ("reinforce", 2, 4_000_000)
    assert pg.stop_at_threshold and pg.target_return == 17.0
    assert (pg.eval_interval, pg.eval_episodes) == (250_000, 10)
    assert pg.root_dir == str(tmp_path / "pg-seed2")
    ppo = parsed_config(results.ppo_argv(args, tmp_path, minutes=41.234)).run
    assert (ppo.agent, ppo.seed, ppo.max_train_minutes) == ("ppo", 0, 41.23)
    assert not ppo.stop_at_threshold and ppo.eval_episodes == 10


def test_a_runs_figures_and_row_come_from_its_files(results, tmp_path):
    # Two segments (the second restarts wall_seconds, total_wall_seconds goes on); the
    # greedy evaluations cross 0 at 750k (6 min) and +18 at 1M (10 min); the training
    # return crosses 0 at 1M only.
    root = tmp_path / "pg-seed0"
    write_run(
        root,
        [
            "500000,30,240,240,1000,0.1,-20.0,,",
            "500000,30,250,250,,,,-21.0,0.0",
            "750000,45,100,360,1000,0.1,-5.0,,",
            "750000,45,110,360,,,,2.5,4.0",
            "1000000,61,230,600,1000,0.1,15.0,,",
            "1000000,61,240,600,,,,18.4,1.2",
        ],
        "reinforce",
        {"env_steps": 1_000_000, "stopped_by_signal": None},
    )
    for name in results.SCORES:
        results.score_file(root, name).write_text(json.dumps({"mean": 17.5, "std": 2.0}))
    results.study_file(root).write_text('{"shared_machine": true}')
    r = results.run_figures(root, "PG seed 0", 18.0)
    assert r["ended"] and r["shared_machine"]
    assert (r["env_steps"], r["training_minutes"]) == (1_000_000, 10.0)
    assert (r["break_even"]["env_steps"], r["break_even"]["eval_mean"]) == (750_000, 2.5)
    assert r["break_even"]["training_wall_seconds"] == 360
    assert r["target"]["env_steps"] == 1_000_000
    assert r["train_break_even"] == {"env_steps": 1_000_000, "training_wall_seconds": 600}
    assert [e[0] for e in r["evaluations"]] == [500_000, 750_000, 1_000_000]
    assert [c[2] for c in r["curve"]] == [4.0, 6.0, 10.0]  # minutes over both segments
    assert results.run_row(r) == (
        "| PG seed 0 | 1,000,000 | 10.0 min (shared) | 1,000,000 (10.0 min (shared)) | "
        "750,000 (6.0 min (shared)) | 1,000,000 (10.0 min (shared)) | "
        "+17.5 ± 2.0 | +17.5 ± 2.0 | +17.5 ± 2.0 | +17.5 ± 2.0 |"
    )


def test_a_stopped_run_without_scores_says_so(results, tmp_path):
    root = tmp_path / "pg-seed1"
    write_run(
        root,
        ["500000,30,240,240,1000,0.1,-20.0,,", "500000,30,250,250,,,,-21.0,0.0"],
        "reinforce",
        {"env_steps": 500_000, "stopped_by_signal": 15},
    )
    r = results.run_figures(root, "PG seed 1", 18.0)
    assert not r["ended"] and r["break_even"] is None and r["target"] is None
    assert r["train_break_even"] is None
    assert "500,000 (running or stopped)" in results.run_row(r)
    assert results.run_row(r).endswith("| not reached | not reached | – | – | – | – |")
    assert results.run_figures(tmp_path / "none", "PG seed 2", 18.0) is None


def test_a_run_is_complete_as_train_py_would_judge_it(results, tmp_path):
    row = ["2000000,122,1500,1500,1000,0.1,10.0,,"]  # 25 minutes of training
    cases = {
        "signal": {"env_steps": 2_000_000, "stopped_by_signal": 15},
        "cap": {"env_steps": 2_000_000, "stopped_by_signal": None},
        "solved": {"env_steps": 2_000_000, "solved_at_env_steps": 1_750_000},
    }
    for name, result in cases.items():
        write_run(tmp_path / name, row, "reinforce", result)
    assert not results.complete(tmp_path / "signal", steps=1_000_000)
    assert not results.complete(tmp_path / "missing", steps=1_000_000)
    # A PG run: past its cap, or stopped at the target; a larger cap resumes it.
    assert results.complete(tmp_path / "cap", steps=2_000_000)
    assert not results.complete(tmp_path / "cap", steps=3_000_000)
    assert results.complete(tmp_path / "solved", steps=5_000_000)
    # PPO: its training minutes against the budget; a larger budget resumes it.
    assert results.complete(tmp_path / "cap", minutes=25.0)
    assert not results.complete(tmp_path / "cap", minutes=30.0)


def test_a_score_of_an_earlier_export_is_played_again(results, tmp_path):
    root = tmp_path / "r"
    write_run(root, [], "reinforce", {"env_steps": 3_000_000, "train_steps": 183})
    assert not results.scored(root, "greedy")
    score = results.score_file(root, "greedy")
    score.write_text('{"mean": 5.0, "std": 1.0, "policy_train_step": 122}')  # before a resume
    assert not results.scored(root, "greedy")
    score.write_text('{"mean": 19.0, "std": 1.0, "policy_train_step": 183}')
    assert results.scored(root, "greedy")


def test_the_ppo_budget_is_the_median_pg_runs_minutes(results, tmp_path):
    for seed, minutes in ((0, 20), (1, 45), (2, 30)):
        write_run(
            tmp_path / f"pg-seed{seed}",
            [f"1000000,61,{60 * minutes},{60 * minutes},1000,0.1,5.0,,"],
            "reinforce",
            None,
        )
    args = results.parse_args([])
    assert results.ppo_budget(args, tmp_path) == 30.0
    assert results.ppo_budget(results.parse_args(["--ppo_minutes=12.5"]), tmp_path) == 12.5


def test_the_report_says_which_budget_ppo_had_when_it_is_not_the_median(results):
    pg = [{"run": f"PG seed {s}", "num_env_steps": 3_000_000, "training_minutes": m}
          for s, m in enumerate((40.0, 52.5, 61.0))]  # fmt: skip
    ppo = {"run": "PPO seed 0", "num_env_steps": 10_000_000, "max_train_minutes": 45.0}
    assert results._ends(pg) == ("3,000,000", "")
    assert results._ends([*pg, ppo]) == (
        "3,000,000",
        "; PPO (pong_ppo.cfg, seed 0) for 45.0 training minutes (the PG runs' median is 52.5)",
    )
    assert results._ends([*pg, {**ppo, "max_train_minutes": 52.5}])[1].endswith(
        ", the median PG run's"
    )


def test_the_report_exports_every_run_and_writes_its_table(results, tmp_path, monkeypatch):
    out, exported = tmp_path / "runs", tmp_path / "results"
    rows = ["250000,15,120,120,1000,0.1,-19.0,,", "250000,15,130,130,,,,-20.0,1.0"]
    # The runs' own ends (a 2M cap; PPO for the PG run's 2.2 minutes) are reported, not
    # the reporting call's flags (the default 3M cap).
    write_run(out / "pg-seed0", rows, "reinforce", {"env_steps": 250_000}, 2_000_000)
    write_run(out / "ppo-seed0", rows, "ppo", {"env_steps": 250_000}, max_train_minutes=2.2)
    results.score_file(out / "ppo-seed0", "greedy").write_text('{"mean": -20.0, "std": 1.0}')
    doc = tmp_path / "on-policy.md"
    doc.write_text("# On-policy\n")
    monkeypatch.setattr(results, "DOC", doc)
    monkeypatch.setattr(results, "JSON_OUT", tmp_path / "out.json")
    monkeypatch.setattr(results, "PLOT", tmp_path / "pg_vs_ppo.png")
    results.report(
        results.parse_args(["--seeds=0", f"--out_dir={out}", f"--results_dir={exported}"]), out
    )
    text = doc.read_text()
    assert results.MARKERS[0] in text and "| PG seed 0 | 250,000 |" in text
    assert "| PPO seed 0 | 250,000 |" in text and "| -20.0 ± 1.0 | – |" in text
    assert (
        "or 2,000,000 env steps; PPO (pong_ppo.cfg, seed 0) for 2.2 training minutes, "
        "the median PG run's." in text
    )
    summary = json.loads((exported / "pong_pg-seed0" / "summary.json").read_text())
    assert summary["exported_with"].endswith("--target=0 --target=18")
    assert (exported / "pong_ppo-seed0" / "eval_greedy_10_games.json").is_file()
    assert (tmp_path / "pg_vs_ppo.png").stat().st_size > 0
    saved = json.loads((tmp_path / "out.json").read_text())
    assert [r["run"] for r in saved["runs"]] == ["PG seed 0", "PPO seed 0"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--cap=1000"], "error: --cap must be >= 250,000"),
        (["--ppo_minutes=0"], "error: --ppo_minutes must be > 0"),
        (["--seeds=a"], "error: argument --seeds: 'a' is not an integer seed"),
        (["--report_only", "--out_dir=/nonexistent/runs"], "error: no runs with metrics"),
    ],
)
def test_bad_input_is_one_line(argv, message):
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / "pong_pg_results.py"), *argv],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith(message) and "\n" not in proc.stderr.strip()
