"""benchmarks/solve_bench.py and its three suites (bench_cartpole, bench_continuous,
bench_onpolicy): commands, parsing, rows, medians, ratios and the report, without a run.

No test here trains: the subprocesses only check the scripts' imports and bad flags.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
from typing import Any

import pytest

from tests.benchmarks import BENCHMARKS, import_benchmarks

REPO = BENCHMARKS.parent
SCRIPTS = ("bench_cartpole", "bench_continuous", "bench_onpolicy")


@pytest.fixture(scope="module")
def sb():
    (solve_bench,) = import_benchmarks("solve_bench")
    return solve_bench


@pytest.fixture(scope="module")
def suites(sb):
    bench_cartpole, bench_continuous, bench_onpolicy = import_benchmarks(*SCRIPTS)
    return {
        "cartpole": bench_cartpole.SUITE,
        "continuous": bench_continuous.SUITE,
        "onpolicy": bench_onpolicy.SUITE,
    }


def committed(name: str) -> dict[str, Any]:
    return json.loads((BENCHMARKS / "results" / f"{name}.json").read_text())


# --- commands ---------------------------------------------------------------------------


def argv(sb, suite, system: str, **settings: Any) -> list[str]:
    defaults = dict(eval_interval=1000, eval_episodes=10, target_return=-200.0)
    args, result = sb.command(
        suite.systems[system], 7, pathlib.Path("/t"), sb.Settings(**{**defaults, **settings})
    )
    assert args[0] == sys.executable
    return [*args[1:], f"-> {result}"]


def test_tfa_suite_commands_run_train_py_on_the_suites_config(sb, suites):
    common = ["--seed=7", "--root_dir=/t/run", "--video_episodes=0"]
    cartpole, continuous = suites["cartpole"], suites["continuous"]
    assert argv(sb, cartpole, "tfa_graph") == [
        "experiments/train.py", "--flagfile=experiments/configs/cartpole.cfg", *common,
        "-> /t/run/result.json",
    ]  # fmt: skip
    assert argv(sb, cartpole, "tfa_python", max_env_steps=5000) == [
        "experiments/train.py", "--flagfile=experiments/configs/cartpole.cfg", *common,
        "--num_env_steps=5000", "--backend=python", "-> /t/run/result.json",
    ]  # fmt: skip
    assert argv(sb, continuous, "tfa_td3_zoonet") == [
        "experiments/train.py", "--flagfile=experiments/configs/pendulum_td3.cfg", *common,
        "--actor_layers=400,300", "--critic_layers=400,300", "-> /t/run/result.json",
    ]  # fmt: skip
    assert argv(sb, suites["onpolicy"], "tfa_ppo") == [
        "experiments/train.py", "--flagfile=experiments/configs/cartpole_ppo.cfg", *common,
        "-> /t/run/result.json",
    ]  # fmt: skip


def test_sb3_commands_pass_the_configs_evaluation_and_the_harness_settings(sb, suites):
    shared = [
        "--seed=7", "--eval_interval=1000", "--eval_episodes=10", "--eval_seed_offset=1000003",
        "--target=-200.0", "--torch_threads=2", "--out=/t/result.json",
    ]  # fmt: skip
    assert argv(sb, suites["continuous"], "sb3_ddpg", sb3_torch_threads=2) == [
        "benchmarks/sb3_continuous.py", "--algo=ddpg", *shared, "-> /t/result.json",
    ]  # fmt: skip
    assert argv(sb, suites["cartpole"], "sb3", sb3_torch_threads=2, max_env_steps=9) == [
        "benchmarks/sb3_cartpole.py", *shared, "--max_env_steps=9", "-> /t/result.json",
    ]  # fmt: skip
    assert argv(sb, suites["onpolicy"], "sb3_ppo", sb3_torch_threads=2)[0] == (
        "benchmarks/sb3_ppo_cartpole.py"
    )


def test_eval_seed_offset_is_tfa_suites(sb):
    from tfa_suite.config import EVAL_SEED_OFFSET

    assert sb.Settings(1, 1, 1.0).eval_seed_offset == EVAL_SEED_OFFSET


@pytest.mark.parametrize("name", ["cartpole", "continuous", "onpolicy"])
def test_plan_reads_evaluation_settings_from_the_configs(sb, suites, name):
    suite = suites[name]
    plan = sb.make_plan(suite, [])
    for system in suite.systems.values():
        if system.cfg is not None:
            cfg = sb.read_cfg(system.cfg)
            assert plan.settings.eval_interval == int(cfg["eval_interval"])
            assert plan.settings.eval_episodes == int(cfg["eval_episodes"])
            target = float(cfg.get("target_return", suite.default_target))
            assert plan.settings.target_return == target
    assert plan.seeds == [0, 1, 2] and list(plan.systems) == list(suite.systems)
    assert plan.out == suite.results and plan.doc == sb.DOC and plan.mode == "full"


def test_plan_flags(sb, suites, tmp_path):
    smoke = sb.make_plan(suites["continuous"], ["--smoke", "--seeds=4,5", "--systems=sb3_sac"])
    assert smoke.seeds == [4] and smoke.settings.max_env_steps == 2000
    assert list(smoke.systems) == ["sb3_sac"] and smoke.mode == "smoke test, 1 seed"
    assert smoke.out.name == "pendulum-bench-smoke.json" and not smoke.out.is_relative_to(REPO)
    out, doc = tmp_path / "c.json", tmp_path / "c.md"
    quick = sb.make_plan(
        suites["cartpole"],
        ["--quick", "--systems=sb3,tfa_graph", f"--out={out}", f"--doc={doc}"],
    )
    assert (quick.seeds, list(quick.systems), quick.out, quick.doc) == (
        [0],
        ["sb3", "tfa_graph"],
        out,
        doc,
    )
    cfg = tmp_path / "ppo.cfg"
    cfg.write_text("--eval_interval=512\n--eval_episodes=3\n--target_return=200\n")
    onpolicy = sb.make_plan(suites["onpolicy"], [f"--cfg={cfg}", "--max_env_steps=800"])
    assert onpolicy.systems["tfa_ppo"].cfg == cfg and onpolicy.cfg == cfg
    assert (onpolicy.settings.eval_interval, onpolicy.settings.target_return) == (512, 200.0)
    args, _ = sb.command(onpolicy.systems["tfa_ppo"], 0, tmp_path, onpolicy.settings)
    assert f"--flagfile={cfg}" in args and "--num_env_steps=800" in args


# --- one-line errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, args, message",
    [
        ("cartpole", ["--seeds=x"], "error: argument --seeds: 'x' is not an integer seed"),
        ("cartpole", ["--seeds=0,,x"], "error: argument --seeds: 'x' is not an integer seed"),
        ("continuous", ["--seeds=,"], "error: argument --seeds: no seeds given"),
        ("continuous", ["--systems=tfa_sac,nope"], "error: unknown systems ['nope']; choose"),
        ("onpolicy", ["--systems=,"], "error: --systems: no systems given"),
        ("cartpole", ["--cfg=x.cfg"], "error: unrecognized arguments: --cfg=x.cfg"),
        ("cartpole", ["--smoke"], "error: unrecognized arguments: --smoke"),
        ("onpolicy", ["--cfg=/no/such.cfg"], "error: /no/such.cfg not found"),
        ("onpolicy", ["--max_env_steps=-1"], "error: --max_env_steps must be >= 0"),
        ("onpolicy", ["--timeout=abc"], "error: argument --timeout: invalid float value"),
    ],
)
def test_bad_input_is_one_error_line(sb, suites, capsys, name, args, message):
    with pytest.raises(SystemExit) as exit_info:
        sb.make_plan(suites[name], args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith(message), err


def test_config_without_evaluation_lines_is_one_error_line(sb, suites, capsys, tmp_path):
    cfg = tmp_path / "bare.cfg"
    cfg.write_text("--eval_episodes=3\n")
    with pytest.raises(SystemExit):
        sb.make_plan(suites["onpolicy"], [f"--cfg={cfg}"])
    assert capsys.readouterr().err == f"error: {cfg} has no --eval_interval\n"


@pytest.mark.parametrize("script", SCRIPTS)
def test_scripts_refuse_bad_seeds_without_a_traceback(script):
    outcome = subprocess.run(
        [sys.executable, f"benchmarks/{script}.py", "--seeds=x"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert outcome.returncode == 2
    assert outcome.stderr == "error: argument --seeds: 'x' is not an integer seed\n"


def test_scripts_import_no_tensorflow():
    code = (
        "import sys; sys.path.insert(0, 'benchmarks'); "
        "import bench_cartpole, bench_continuous, bench_onpolicy; "
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=120)


# --- rows, medians and ratios -----------------------------------------------------------

LOG = """run dir: /tmp/x/run  (agent: ppo, env: CartPole-v1, backend: graph, device: /CPU:0)
[    2s] traced the training loop in 3.4 s
[    4s] step     2,048/100,000 ( 2.0%) |     900 steps/s | loss   0.3160 | ETA 1m48s
[    5s] eval @ 2,048 env steps (in-graph env): return 85.1 ± 45.7 over 10 episodes
"""


def test_trace_seconds_reads_the_traced_line(sb):
    assert sb.trace_seconds(LOG, {}) == pytest.approx(3.4)


def test_trace_seconds_sums_several_lines_and_takes_other_units(sb):
    log = "traced collect in 1.5 s\n[ 3s] traced the train step in 2seconds\ntraced in 0.5s"
    assert sb.trace_seconds(log, {}) == pytest.approx(4.0)


def test_trace_seconds_prefers_a_result_field_and_tolerates_absence(sb):
    assert sb.trace_seconds(LOG, {"trace_seconds": 1.25}) == 1.25
    assert sb.trace_seconds("eval @ 1,024 env steps (3.1 s): return 20.0", {}) is None


def test_in_run_seconds_start_after_the_imports_on_both_sides(sb):
    tfa = sb.in_run_fields(False, LOG, {"solved": True, "solved_at_seconds": 6.0})
    assert tfa["in_run_to_solve_seconds"] == 6.0 and tfa["trace_seconds"] == pytest.approx(3.4)
    sb3_result = {"solved": True, "solved_at_seconds": 8.0, "import_seconds": 2.5}
    sb3 = sb.in_run_fields(True, "", sb3_result)
    assert sb3["in_run_to_solve_seconds"] == 5.5 and sb3["trace_seconds"] is None
    unsolved = sb.in_run_fields(False, "", {"solved": False, "solved_at_seconds": None})
    assert unsolved["in_run_to_solve_seconds"] is None


def solved_result(**fields: Any) -> dict[str, Any]:
    return {
        "solved": True, "solved_at_seconds": 6.0, "wall_seconds": 9.0,
        "solved_at_env_steps": 4000, "train_steps": 900, "solved_at_train_steps": 800,
        "final_eval_mean": 480.0, "eval_seconds": 0.5, **fields,
    }  # fmt: skip


def test_rows_take_the_post_solve_tail_off_and_split_start_up_from_in_run(sb, suites):
    systems = suites["onpolicy"].systems
    row = sb.make_row(
        "tfa_ppo", systems["tfa_ppo"], 0, argv=["python", "train.py"], returncode=0,
        process_seconds=12.0, stall_seconds=0.6, result=solved_result(), log=LOG,
    )  # fmt: skip
    assert row["to_solve_seconds"] == 9.0  # 12 s minus the 3 s after solving
    assert row["in_run_to_solve_seconds"] == 6.0 and row["startup_seconds"] == 3.0
    assert row["gradient_steps"] == 800 and row["env_steps_per_second"] == pytest.approx(4000 / 9)
    assert row["cpu_stall_percent"] == pytest.approx(5.0) and row["command"] == "python train.py"
    assert row.keys() >= set(committed("onpolicy")["runs"][0])
    timed_out = sb.make_row(
        "sb3_ppo", systems["sb3_ppo"], 0, argv=["x"], returncode=None, process_seconds=30.0,
        stall_seconds=None, result={}, log="",
    )  # fmt: skip
    assert not timed_out["solved"] and timed_out["to_solve_seconds"] is None
    assert timed_out["startup_seconds"] is None and timed_out["cpu_stall_percent"] is None


def test_unsolved_runs_count_as_infinitely_slow(sb):
    assert sb.median([3.0, None, 5.0], unsolved_as_inf=True) == 5.0
    assert sb.median([3.0, None, None], unsolved_as_inf=True) is None  # the median is inf
    assert sb.median([3.0, None, None]) == 3.0
    assert sb.median([None, None], unsolved_as_inf=True) is None
    assert sb.median([]) is None


def test_summary_counts_unsolved_runs_in_the_headline_median_only(sb, suites):
    def row(seconds: float | None) -> dict[str, Any]:
        solved = seconds is not None
        return {
            "system": "sb3", "solved": solved, "to_solve_seconds": seconds,
            "process_seconds": 20.0 if solved else 60.0, "env_steps": 1000 if solved else None,
            "gradient_steps": None, "env_steps_per_second": None,
            "in_run_to_solve_seconds": seconds, "startup_seconds": None, "trace_seconds": None,
        }  # fmt: skip

    systems = {"sb3": suites["cartpole"].systems["sb3"]}
    summary = sb.summarize([row(10.0), row(None), row(None)], systems)["sb3"]
    assert summary["solved"] == "1/3" and summary["median_to_solve_seconds"] is None
    assert summary["median_process_seconds"] == 20.0 and summary["median_env_steps"] == 1000
    summary = sb.summarize([row(10.0), row(12.0), row(None)], systems)["sb3"]
    assert summary["median_to_solve_seconds"] == 12.0


def medians(to_solve: float | None, in_run: float | None = None) -> dict[str, Any]:
    return {"median_to_solve_seconds": to_solve, "median_in_run_to_solve_seconds": in_run}


def test_peer_ratios_pair_each_tfa_suite_system_with_its_peer(sb, suites):
    summary = {
        "tfa_td3": medians(10.0, 5.0), "tfa_td3_zoonet": medians(20.0),
        "sb3_td3": medians(40.0, 20.0), "tfa_sac": medians(None), "sb3_sac": medians(30.0),
        "tfa_ddpg": medians(10.0),
    }  # fmt: skip
    ratios = sb.peer_ratios(summary, suites["continuous"].pairings)
    assert ratios == {
        "sb3_over_tfa_td3": 4.0, "in_run_sb3_over_tfa_td3": 4.0, "sb3_over_tfa_td3_zoonet": 2.0,
    }  # fmt: skip
    assert summary["tfa_td3"]["peer_over_this"] == 4.0
    assert "peer_over_this" not in summary["tfa_sac"]  # unsolved: no ratio
    assert "peer_over_this" not in summary["tfa_ddpg"]  # sb3_ddpg did not run
    cartpole = {"tfa_graph": medians(8.0), "tfa_python": medians(16.0), "sb3": medians(24.0)}
    assert sb.peer_ratios(cartpole, suites["cartpole"].pairings) == {
        "sb3_over_tfa_graph": 3.0, "sb3_over_tfa_python": 1.5,
    }  # fmt: skip
    onpolicy = {"tfa_ppo": medians(12.0, 6.0), "sb3_ppo": medians(9.0, 6.6)}
    assert sb.peer_ratios(onpolicy, suites["onpolicy"].pairings) == pytest.approx(
        {"sb3_ppo_over_tfa_ppo": 0.75, "in_run_sb3_ppo_over_tfa_ppo": 1.1}
    )


@pytest.mark.parametrize(
    "name, results",
    [("cartpole", "cartpole"), ("continuous", "pendulum"), ("onpolicy", "onpolicy")],
)
def test_peer_ratios_reproduce_the_committed_results(sb, suites, name, results):
    report = committed(results)
    summary = {k: {**v} for k, v in report["summary"].items()}
    assert sb.peer_ratios(summary, suites[name].pairings) == pytest.approx(report["ratios"])


def test_ratio_sentences(sb, suites):
    continuous = suites["continuous"].pairings
    summary = dict.fromkeys(["tfa_td3", "sb3_td3", "tfa_sac", "sb3_sac", "tfa_ddpg", "sb3_ddpg"])
    ratios = {"sb3_over_tfa_td3": 4.04, "sb3_over_tfa_sac": 1.5, "in_run_sb3_over_tfa_td3": 2.0}
    assert sb.ratio_sentence(continuous, summary, ratios) == (
        "SB3 ÷ tfa_suite, median s to solve: TD3 4.0x (goal >= 2: met), SAC 1.5x (goal >= 2: "
        "not met), DDPG –; median in-run s: TD3 2.0x."
    )
    assert sb.ratio_sentence(continuous, {"tfa_td3": {}}, ratios) == ""
    onpolicy = suites["onpolicy"].pairings
    ratios = {"sb3_ppo_over_tfa_ppo": 0.84, "in_run_sb3_ppo_over_tfa_ppo": 1.09}
    assert sb.ratio_sentence(onpolicy, {"tfa_ppo": {}, "sb3_ppo": {}}, ratios) == (
        "SB3 ÷ tfa_suite, median s to solve: 0.8x (goal >= 1.5: not met); median in-run s: 1.1x."
    )
    cartpole = dict.fromkeys(["tfa_graph", "tfa_python", "sb3"])
    assert sb.ratio_sentence(suites["cartpole"].pairings, cartpole, {"sb3_over_tfa_graph": 2}) == ""


# --- the report -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, results",
    [("cartpole", "cartpole"), ("continuous", "pendulum"), ("onpolicy", "onpolicy")],
)
def test_report_keeps_every_key_of_the_committed_json(sb, suites, name, results, tmp_path):
    suite = suites[name]
    plan = sb.make_plan(suite, ["--quick", f"--out={tmp_path / 'r.json'}"])
    runs = [
        sb.make_row(
            system_name, system, 0, argv=["x"], returncode=0, process_seconds=12.0,
            stall_seconds=0.1, result=solved_result(import_seconds=1.0), log=LOG,
        )
        for system_name, system in plan.systems.items()
    ]  # fmt: skip
    report = sb.make_report(plan, runs, 0.5, 0.7)
    old = committed(results)
    assert report.keys() >= old.keys()
    assert report["summary"].keys() == old["summary"].keys()
    for system, entry in report["summary"].items():
        assert entry.keys() >= old["summary"][system].keys()
    assert report["ratios"].keys() >= old["ratios"].keys()
    assert report["benchmark"] == old["benchmark"]
    for key in ("goal_ratios", "goal_ratio", "cfg"):
        if key in old:
            assert report[key] == old[key]
    text = sb.markdown(suite, report)
    assert text.startswith(f"Command: `make {suite.make_target}` (quick")
    assert "Where the seconds to solve go:" in text
    assert text.endswith("What is measured: " + suite.measured)


@pytest.mark.parametrize(
    "name, results",
    [("cartpole", "cartpole"), ("continuous", "pendulum"), ("onpolicy", "onpolicy")],
)
def test_tables_keep_the_shape_of_the_committed_doc(sb, suites, name, results):
    """The summary and runs tables of the committed JSON, rendered now, are in the doc."""
    report = committed(results)
    start, end = suites[name].markers
    section = sb.DOC.read_text().split(start, 1)[1].split(end, 1)[0]
    for line in [*sb.summary_table(report["summary"]), *sb.runs_table(report["runs"])]:
        assert line in section


def test_write_doc_replaces_only_the_section(sb, tmp_path):
    doc = tmp_path / "b.md"
    doc.write_text("# B\n\n<!-- a:start -->\nold\n<!-- a:end -->\n\ntail\n")
    sb.write_doc(doc, "<!-- a:start -->", "<!-- a:end -->", "new", heading="## A")
    assert doc.read_text() == "# B\n\n<!-- a:start -->\nnew\n<!-- a:end -->\n\ntail\n"
    sb.write_doc(doc, "<!-- c:start -->", "<!-- c:end -->", "c", heading="## C")
    assert doc.read_text().endswith("tail\n\n## C\n\n<!-- c:start -->\nc\n<!-- c:end -->\n")
