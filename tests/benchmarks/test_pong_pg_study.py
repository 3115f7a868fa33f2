"""benchmarks/pong_pg_study.py without training: its figures from a run's files, its
report, and its one-line refusals. No test here imports TensorFlow."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

from tests.benchmarks import BENCHMARKS, import_benchmarks


@pytest.fixture(scope="module")
def study():
    (pong_pg_study,) = import_benchmarks("pong_pg_study")
    return pong_pg_study


HEADER = (
    "env_steps,train_steps,wall_seconds,env_steps_per_sec,loss,train_return,eval_mean,eval_std\n"
)


def write_run(root: pathlib.Path, rows: list[str], result: dict | None = None) -> None:
    root.mkdir(parents=True)
    (root / "metrics.csv").write_text(HEADER + "".join(r + "\n" for r in rows))
    if result is not None:
        (root / "result.json").write_text(json.dumps(result))


def test_a_runs_figures_come_from_its_metrics_over_resumed_segments(study, tmp_path):
    # Two segments: the second process's clock restarts at 0, so the crossing at 1.5M env
    # steps comes 100 + 50 s into training. The evaluation row has no training return.
    write_run(
        tmp_path / "r",
        [
            "500000,30,60.0,1000,0.1,-20.5,,",
            "1000000,61,100.0,1000,0.1,-3.0,,",
            "1500000,91,50.0,1000,0.1,0.5,,",
            "1500000,91,55.0,,,,-4.0,2.0",
            "2000000,122,90.0,1000,0.1,12.0,,",
        ],
        result={"env_steps": 2_000_000, "stopped_by_signal": None},
    )
    (tmp_path / "r" / study.EVAL_FILE).write_text(
        json.dumps({"mean": 5.0, "std": 3.0, "returns": [2.0, 8.0]})
    )
    # What the study remembers of a run sits beside it: train.py refuses a run dir holding
    # anything but a run.
    assert study.study_file(tmp_path / "r") == tmp_path / "r.study.json"
    study.study_file(tmp_path / "r").write_text('{"variant": "adam1e-3", "shared_machine": true}')
    figures = study.run_figures(tmp_path / "r", "adam1e-3", 0, budget=2_000_000)
    assert figures["shared_machine"] is True
    assert "| adam1e-3 | 0 | 2,000,000 | 3 min (shared) | 1,500,000 (2 min (shared)) |" in (
        study.run_row(figures)
    )
    assert figures["finished"] is True
    assert figures["env_steps"] == 2_000_000
    assert figures["training_wall_seconds"] == 190.0
    assert figures["first_train_return_ge_0"] == {
        "env_steps": 1_500_000,
        "training_wall_seconds": 150.0,
    }
    assert figures["last_train_return"] == 12.0
    assert figures["greedy_10_games"]["mean"] == 5.0
    assert [p[0] for p in figures["curve"]] == [500_000, 1_000_000, 1_500_000, 2_000_000]


def test_a_stopped_or_flat_run_is_reported_as_such(study, tmp_path):
    write_run(
        tmp_path / "r",
        ["500000,30,60.0,1000,0.1,-20.5,,", "900000,55,110.0,1000,0.1,-17.3,,"],
        result={"env_steps": 900_000, "stopped_by_signal": 15},
    )
    flat = study.run_figures(tmp_path / "r", "rmsprop1e-4", 1, budget=2_000_000)
    assert flat["finished"] is False and flat["first_train_return_ge_0"] is None
    args = study.parse_args(["--variants=rmsprop1e-4,adam1e-3", "--seeds=1"])
    text = study.report_text([flat], args)
    assert (
        "| rmsprop1e-4 | 1 | 900,000 (running or stopped) | 2 min | not reached | -17.3 | – |"
        in text
    )
    # A stopped run is in the run table, not in its variant's summary: no seed finished.
    assert "| rmsprop1e-4 | 0 | 0 | – | – |" in text
    assert "| adam1e-3 |" not in text  # the variant with no runs gets no row


def test_the_variant_summary_counts_finished_runs_only(study):
    def run(seed: int, finished: bool, first: int | None, greedy: float | None) -> dict:
        return {
            "variant": "adam1e-3", "seed": seed, "finished": finished,
            "first_train_return_ge_0": {"env_steps": first} if first else None,
            "greedy_10_games": {"mean": greedy} if greedy is not None else None,
        }  # fmt: skip

    # Seed 2 is still training and has not reached 0: it is not counted as a seed that
    # failed to, so the two finished seeds give the medians.
    runs = [run(0, True, 1_500_000, 10.0), run(1, True, 1_700_000, 18.0), run(2, False, None, None)]
    assert study.variant_row("adam1e-3", runs) == "| adam1e-3 | 2 | 2 | 1,600,000 | +14.0 |"
    # A finished seed that never reached 0 counts beyond the budget: no median of two.
    runs[1] = run(1, True, None, -15.0)
    assert study.variant_row("adam1e-3", runs) == "| adam1e-3 | 2 | 1 | – | -2.5 |"


def test_the_echoed_line_is_the_running_process_own(study, tmp_path):
    # A run's log gathers every process's output; while an evaluation has printed nothing
    # yet, the previous one's last line ("scores: ...") must not be echoed under its label.
    log = tmp_path / "run.log"
    log.write_text("scores: eval_greedy_10_games.json\n\n")
    start = log.stat().st_size
    assert study._last_line(log) == "scores: eval_greedy_10_games.json"
    assert study._last_line(log, start) == ""
    with open(log, "a") as f:
        f.write("playing 10 games\n  \n")
    assert study._last_line(log, start) == "playing 10 games"


def test_a_run_without_metrics_is_left_out(study, tmp_path):
    (tmp_path / "r").mkdir()
    assert study.run_figures(tmp_path / "r", "adam3e-4", 0, budget=10) is None


@pytest.mark.parametrize(
    "args, message",
    [
        (["--variants=adam1e-2"], "error: --variants: unknown adam1e-2; known: adam1e-3"),
        (["--seeds=a"], "error: argument --seeds: 'a' is not an integer seed"),
        (["--num_env_steps=0"], "error: --num_env_steps must be >= 1"),
    ],
)
def test_bad_arguments_get_one_line(args, message):
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "pong_pg_study.py"), "--report_only", *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith(message) and len(done.stderr.strip().splitlines()) == 1


def test_reporting_an_empty_study_is_one_line(tmp_path):
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "pong_pg_study.py"), "--report_only",
         f"--out_dir={tmp_path}", "--record="],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    expected = f"error: no screening runs with metrics under {tmp_path}, none recorded; run"
    assert done.stderr.strip() == expected + " without --report_only first"


def recorded_run(variant: str, seed: int, finished: bool = True) -> dict:
    return {
        "variant": variant, "seed": seed, "finished": finished, "env_steps": 2_013_994,
        "training_wall_seconds": 2734.2, "shared_machine": False,
        "first_train_return_ge_0": {"env_steps": 1_522_639, "training_wall_seconds": 2180.6},
        "last_train_return": 8.6, "greedy_10_games": {"mean": 7.5, "std": 1.0, "returns": []},
        "curve": [[1_000_000, -10.0], [2_013_994, 8.6]],
    }  # fmt: skip


def write_record(path: pathlib.Path, runs: list[dict], budget: int = 2_000_000) -> pathlib.Path:
    path.write_text(json.dumps({"num_env_steps": budget, "runs": runs}))
    return path


def test_recorded_finished_runs_are_kept_and_a_run_on_disk_replaces_its_record(study, tmp_path):
    record = write_record(
        tmp_path / "record.json",
        [recorded_run("adam1e-3", 0), recorded_run("adam1e-3", 1),
         recorded_run("adam3e-4", 1, finished=False)],
    )  # fmt: skip
    recorded = study.recorded_runs(record, budget=2_000_000)
    # The unfinished run cannot be resumed from a record: it is not kept.
    assert sorted(recorded) == [("adam1e-3", 0), ("adam1e-3", 1)]
    assert all(r["recorded"] for r in recorded.values())
    # Another budget's record compares nothing with this study's runs.
    assert study.recorded_runs(record, budget=1_000_000) == {}
    assert study.recorded_runs(None, budget=2_000_000) == {}

    # Seed 1 is on disk again (retrained): its files, not its record, make its row.
    out = tmp_path / "runs"
    write_run(out / "adam1e-3-seed1", ["500000,30,60.0,1000,0.1,-20.5,,"])
    args = study.parse_args(
        ["--variants=adam1e-3", "--seeds=0,1", f"--record={record}", f"--out_dir={out}"]
    )
    runs = study.study_runs(args, out)
    assert [r.get("recorded", False) for r in runs] == [True, False]
    text = study.report_text(runs, args)
    assert (
        "| adam1e-3 | 0 | 2,013,994 † | 46 min | 1,522,639 (36 min) | +8.6 | +7.5 ± 1.0 |" in text
    )
    assert "| adam1e-3 | 1 | 500,000 (running or stopped) | 1 min |" in text
    assert "† Trained in an earlier session" in text and "(record.json)" in text


def test_the_study_does_not_retrain_a_recorded_run_unless_asked(study, tmp_path, monkeypatch):
    record = write_record(tmp_path / "record.json", [recorded_run("adam1e-3", 0)])
    launched = []
    monkeypatch.setattr(study, "run_logged", lambda argv, log, label: launched.append(argv) or 1)
    args = study.parse_args(["--variants=adam1e-3", "--seeds=0", f"--record={record}"])
    study.train_missing(args, tmp_path / "runs")
    assert launched == []  # nothing trained, nothing evaluated
    # Asked to: the run is trained (and this stub's exit 1 is reported as a stop).
    args = study.parse_args(
        ["--variants=adam1e-3", "--seeds=0", f"--record={record}", "--retrain_recorded"]
    )
    with pytest.raises(SystemExit):
        study.train_missing(args, tmp_path / "runs")
    assert len(launched) == 1 and "--seed=0" in launched[0]


def test_a_record_that_is_not_a_report_is_one_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"num_env_steps": 2000000, "runs": [{"seed": 0}]}')
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "pong_pg_study.py"), "--report_only",
         f"--out_dir={tmp_path}", f"--record={bad}"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        == f"error: --record {bad} is not a screening report (KeyError: 'finished')"
    )


def test_a_call_for_some_seeds_reports_the_whole_study(study, tmp_path):
    # The report is also the record: training seed 2 alone must keep the recorded seed-0
    # run and seed 1's run on disk in it, and every variant's summary row.
    record = write_record(tmp_path / "record.json", [recorded_run("adam1e-3", 0)])
    out = tmp_path / "runs"
    write_run(out / "rmsprop1e-4-seed1", ["500000,30,60.0,1000,0.1,-20.5,,"])
    write_run(out / "adam3e-4-seed2", ["500000,30,60.0,1000,0.1,-20.0,,"])
    (out / "not-a-run-seedx").mkdir()  # other files under --out_dir are not runs
    args = study.parse_args(
        ["--variants=adam3e-4", "--seeds=2", f"--record={record}", f"--out_dir={out}"]
    )
    runs = study.study_runs(args, out)
    assert [(r["variant"], r["seed"]) for r in runs] == [
        ("adam1e-3", 0), ("rmsprop1e-4", 1), ("adam3e-4", 2),
    ]  # fmt: skip
    text = study.report_text(runs, args)
    assert "| adam1e-3 | 1 | 1 |" in text and "| rmsprop1e-4 | 0 | 0 |" in text
