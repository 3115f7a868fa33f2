"""benchmarks/profile_run.py and benchmarks/bench_bound.py without a run: their command
lines, and the arithmetic behind their tables (schedules, bound, import times, stages).

No test here trains or imports TensorFlow.
"""

from __future__ import annotations

import itertools
import subprocess
import sys

import pytest

from tests.benchmarks import BENCHMARKS, import_benchmarks

REPO = BENCHMARKS.parent
SCRIPTS = ("profile_run", "bench_bound")


@pytest.fixture(scope="module")
def scripts():
    profile_run, bench_bound, solve_bench = import_benchmarks(*SCRIPTS, "solve_bench")
    return {"profile": profile_run, "bound": bench_bound, "solve_bench": solve_bench}


def run_script(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, f"benchmarks/{script}.py", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


# --- command lines ------------------------------------------------------------------------


def test_scripts_import_no_tensorflow():
    code = (
        "import sys; sys.path.insert(0, 'benchmarks'); import profile_run, bench_bound; "
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=120)


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_shows_the_flags(script):
    outcome = run_script(script, "--help")
    assert outcome.returncode == 0, outcome.stderr
    assert "--quick" in outcome.stdout and "--configs" in outcome.stdout
    assert "--worker" not in outcome.stdout  # the profile's worker flags are internal


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize(
    "args, message",
    [
        (["--bogus"], "error: unrecognized arguments: --bogus\n"),
        (["--configs=ppo,a2c"], "error: argument --configs: choose from ppo, dqn, not 'ppo,a2c'\n"),
        (["--repeats=0"], None),
    ],
)
def test_bad_flags_are_one_error_line(script, args, message):
    outcome = run_script(script, *args)
    assert outcome.returncode == 2
    assert outcome.stdout == ""
    assert outcome.stderr.startswith("error: ") and outcome.stderr.count("\n") == 1
    if message is not None:
        assert outcome.stderr == message


# --- bench_bound's arithmetic ---------------------------------------------------------------


def shipped_loop_fields(scripts, name: str) -> tuple[dict[str, int], int]:
    """A shipped config's loop fields as ints, read from its flagfile, and its --num_envs."""
    cfg = scripts["solve_bench"].read_cfg(REPO / scripts["bound"].CONFIGS[name][1])
    keys = ("rollout_steps", "minibatch_size", "num_epochs", "collect_steps_per_iteration",
            "train_steps_per_iteration")  # fmt: skip
    return {k: int(cfg[k]) for k in keys if k in cfg}, int(cfg["num_envs"])


def test_the_shipped_configs_schedules(scripts):
    bound = scripts["bound"]
    ppo = bound.iteration_schedule(*shipped_loop_fields(scripts, "ppo"))
    dqn = bound.iteration_schedule(*shipped_loop_fields(scripts, "dqn"))
    # PPO: 8 envs x 32 steps = 256 entries, minibatches of 256, 20 epochs.
    assert ppo == bound.Schedule(env_steps=256, batched_steps=32, grad_steps=20)
    # DQN: 128 env steps of 16 envs, 32 gradient steps.
    assert dqn == bound.Schedule(env_steps=128, batched_steps=8, grad_steps=32)


def test_schedules_of_other_loop_settings(scripts):
    bound = scripts["bound"]
    whole = {"rollout_steps": 16, "minibatch_size": 0, "num_epochs": 1}  # one update per rollout
    assert bound.iteration_schedule(whole, 4) == bound.Schedule(64, 16, 1)
    minibatches = {"rollout_steps": 16, "minibatch_size": 16, "num_epochs": 3}
    assert bound.iteration_schedule(minibatches, 4) == bound.Schedule(64, 16, 12)
    with pytest.raises(ValueError, match="no collect-train schedule"):
        bound.iteration_schedule({"batch_size": 64}, 1)


def test_the_bound_adds_the_train_steps_and_env_steps_of_an_iteration(scripts):
    bound = scripts["bound"]
    schedule = bound.Schedule(env_steps=256, batched_steps=32, grad_steps=20)
    # 20 x 1 ms + 32 x 100 us = 23.2 ms per 256 env steps.
    assert bound.bound_rate(schedule, 1e-3, 1e-4) == pytest.approx(256 / 0.0232)
    # Serial: 20 ms of training + 256 env steps at 12,800/s = 20 ms.
    assert bound.serial_rate(schedule, 1e-3, 12_800.0) == pytest.approx(256 / 0.040)
    f = bound.figures(
        schedule, 8, {"train": 1000.0, "env": 10_000.0, "collect": 12_800.0, "loop": 5_000.0}
    )
    assert f["grad_step_ms"] == pytest.approx(1.0)
    assert f["train_ms_per_env_step"] == pytest.approx(20 / 256)
    assert f["env_us_per_env_step"] == pytest.approx(100 / 8)
    assert f["bound_train_share"] == pytest.approx(20 / 23.2)
    assert f["loop_percent_of_bound"] == pytest.approx(100 * 5_000 * 0.0232 / 256)
    assert f["loop_percent_of_serial"] == pytest.approx(100 * 5_000 * 0.040 / 256)


def test_the_bound_table_has_a_column_per_config(scripts):
    bound = scripts["bound"]
    schedule = bound.Schedule(128, 8, 32)
    medians = {"train": 400.0, "env": 5_000.0, "collect": 20_000.0, "loop": 1_400.0}
    config = {
        "label": "DQN CartPole", "num_envs": 16,
        "schedule": {"env_steps": 128, "batched_steps": 8, "grad_steps": 32},
        "loop_iterations_per_call": 7, "figures": bound.figures(schedule, 16, medians),
    }  # fmt: skip
    report = {
        "mode": "quick", "seed": 0, "warning": None, "measured": "M.",
        "configs": {"dqn": config, "ppo": config | {"label": "PPO CartPole"}},
    }  # fmt: skip
    text = bound.markdown(report, lambda r: "Run now.")
    assert "| figure | DQN CartPole | PPO CartPole |" in text
    assert "| schedule per iteration | 128 env steps (16 envs x 8), 32 grad steps |" in text
    assert "What is measured: M." in text


# --- profile_run's import times, stopwatch and stages -------------------------------------

IMPORTTIME = """\
import time: self [us] | cumulative | imported package
import time:       100 |        100 |     numpy.core
import time:       200 |        300 |   numpy
import time:       500 |        800 | tensorflow
import time:        50 |         50 |     tf_agents.specs
import time:         5 |          5 |     tensorflow.lazy
import time:        10 |         10 |       gymnasium.spaces
import time:        40 |         50 |     gymnasium
import time:        30 |        135 |   tf_agents
import time:        20 |        155 | tfa_suite.flags
import time:        70 |         70 | tfa_suite.cli
"""


def test_import_times_per_package(scripts):
    profile = scripts["profile"]
    entries = profile.parse_importtime(IMPORTTIME)
    assert entries[0] == ("numpy.core", 2, 100e-6, 100e-6)
    assert [e[1] for e in entries] == [2, 1, 0, 2, 2, 3, 2, 1, 0, 0]
    summary = profile.import_summary(entries, ("tensorflow", "tf_agents", "gymnasium", "tfa_suite"))
    assert summary["total_s"] == pytest.approx((800 + 155 + 70) * 1e-6)
    packages = summary["packages"]
    # A submodule tf_agents loads later counts as tensorflow's, but tensorflow was first
    # imported at the top level: tf_agents does not include it.
    assert packages["tensorflow"]["cumulative_s"] == pytest.approx(805e-6)
    assert packages["tensorflow"]["own_s"] == pytest.approx(505e-6)  # numpy is not its own
    # gymnasium's outermost import only, its submodule's time inside it.
    assert packages["gymnasium"]["cumulative_s"] == pytest.approx(50e-6)
    assert packages["gymnasium"]["own_s"] == pytest.approx(50e-6)
    assert packages["tfa_suite"]["cumulative_s"] == pytest.approx(225e-6)
    assert sorted(packages["tfa_suite"]["includes"]) == ["gymnasium", "tf_agents"]
    assert packages["tf_agents"]["includes"] == ["gymnasium"]
    assert packages["tensorflow"]["includes"] == []


def test_the_stopwatch_takes_nested_segments_out_of_the_outer_one(scripts):
    ticks = itertools.count()
    watch = scripts["profile"].Stopwatch(clock=lambda: float(next(ticks)))
    with watch("evaluation"):  # 0 .. 5
        with watch("screen"):  # 1 .. 2
            pass
        with watch("gymnasium"):  # 3 .. 4
            pass
    with watch("screen"):  # 6 .. 7
        pass
    assert watch.total == {"screen": 2.0, "gymnasium": 1.0, "evaluation": 5.0}
    assert watch.own == {"screen": 2.0, "gymnasium": 1.0, "evaluation": 3.0}
    assert watch.count == {"screen": 2, "gymnasium": 1, "evaluation": 1}
    watch.close()
    with watch("rows"):
        pass
    assert "rows" not in watch.count


def worker_data(solved: bool) -> dict:
    marks = {
        "script": 100.5, "tensorflow": 104.0, "imports": 106.0, "config": 106.2,
        "build_start": 106.3, "build_end": 107.3, "training": 107.4, "end": 120.0,
        "end_kind": "solved" if solved else "budget", "train_returned": 123.0, "done": 130.0,
    }  # fmt: skip
    own = {"trace_loop": 4.0, "first_call_loop": 1.5, "loop": 5.0, "screen": 1.0, "rows": 0.1}
    return {
        "marks": marks,
        "stopwatch": {"own": own, "count": {k: 1 for k in own}, "first": own, "total": own},
        "counters": {
            "loop_iterations": 40,
            "loop_env_steps": 10_000,
            "loop_grad_steps": 800,
            "prefill_env_steps": 0,
        },  # fmt: skip
        "end_counters": {"env_steps": 10_000, "grad_steps": 800},
        "split": {"loop": 2_000.0, "collect": 10_000.0, "train": 400.0},
        "result": {"wall_seconds": 16.0, "solved_at_seconds": 13.0 if solved else None},
    }


def test_the_stages_add_up_to_the_time_to_solve(scripts):
    profile = scripts["profile"]
    data = worker_data(solved=True)
    st = profile.stages(data, popen=100.0, exit_=130.5)
    s = st["seconds"]
    assert s["interpreter"] == pytest.approx(0.5)
    assert s["import_tensorflow"] == pytest.approx(3.5)
    assert s["build"] == pytest.approx(1.0)
    assert s["session"] == pytest.approx(0.1)
    assert s["rest"] == pytest.approx(12.6 - 11.6)
    assert sum(s.values()) == pytest.approx(st["to_end"]) and st["to_end"] == pytest.approx(20.0)
    # make bench's count: the process without the post-run timings (23 s + 0.5 s of exit),
    # minus the post-solve tail of 3 s.
    assert st["bench_process_seconds"] == pytest.approx(23.5)
    assert st["bench_to_solve_seconds"] == pytest.approx(20.5)
    # After the run the loop took 1/2000 s per env step: collection 1/10,000 s of it (a
    # fifth), training 0.08 grad steps at 1/400 s (two fifths); so 1 s and 2 s of the 5 s.
    assert st["loop_split"] == pytest.approx({"collection": 1.0, "train": 2.0, "other": 2.0})
    unsolved = profile.stages(worker_data(solved=False), popen=100.0, exit_=130.5)
    assert unsolved["bench_to_solve_seconds"] is None and unsolved["ended_by"] == "budget"


def test_the_profile_table(scripts):
    profile = scripts["profile"]
    run = worker_data(solved=True) | {"label": "PPO CartPole", "flagfile": "x/ppo.cfg"}
    run["stages"] = profile.stages(run, popen=100.0, exit_=130.5)
    package = {"cumulative_s": 1.0, "own_s": 0.5, "includes": []}
    imports = {"runs": 1, "total_s": 9.0, "process_s": 10.0,
               "packages": {"tensorflow": package}}  # fmt: skip
    report = {"mode": "full", "seed": 0, "warning": None, "measured": "M.", "imports": imports,
              "runs": {"ppo": run}}  # fmt: skip
    text = profile.markdown(report, lambda r: "Run now.")
    assert "| stage, s | PPO CartPole (`ppo.cfg`) |" in text
    assert "| build: env, agent, loop, evaluator | 1.00 |" in text
    assert (
        "| compiled collect-train calls (`loop.run`) | 5.00 (1 call, 40 iterations, 125 ms each) |"
        in text
    )
    assert "| trace: the greedy action of the gymnasium evaluation | – |" in text
    assert "| **s to solve** (`Popen` -> end of the solving evaluation) | **20.00** |" in text
    assert "| env steps / grad steps then | 10,000 / 800 |" in text
