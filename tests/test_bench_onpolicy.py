"""benchmarks/bench_onpolicy.py's reading of a run's own figures (no runs, no TensorFlow)."""

import pathlib
import sys

import pytest

BENCHMARKS = pathlib.Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import bench_onpolicy
    finally:
        sys.path.remove(str(BENCHMARKS))
    return bench_onpolicy


LOG = """run dir: /tmp/x/run  (agent: ppo, env: CartPole-v1, backend: graph, device: /CPU:0)
[    2s] traced the training loop in 3.4 s
[    4s] step     2,048/100,000 ( 2.0%) |     900 steps/s | loss   0.3160 | ETA 1m48s
[    5s] eval @ 2,048 env steps (in-graph env): return 85.1 ± 45.7 over 10 episodes
"""


def test_trace_seconds_reads_the_traced_line(bench):
    assert bench.trace_seconds(LOG, {}) == pytest.approx(3.4)


def test_trace_seconds_sums_several_lines_and_takes_other_units(bench):
    log = "traced collect in 1.5 s\n[ 3s] traced the train step in 2seconds\ntraced in 0.5s"
    assert bench.trace_seconds(log, {}) == pytest.approx(4.0)


def test_trace_seconds_prefers_a_result_field_and_tolerates_absence(bench):
    assert bench.trace_seconds(LOG, {"trace_seconds": 1.25}) == 1.25
    assert bench.trace_seconds("eval @ 1,024 env steps (3.1 s): return 20.0", {}) is None


def test_in_run_seconds_start_after_the_imports_on_both_sides(bench):
    tfa = bench.in_run_fields("tfa_ppo", LOG, {"solved": True, "solved_at_seconds": 6.0})
    assert tfa["in_run_to_solve_seconds"] == 6.0 and tfa["trace_seconds"] == pytest.approx(3.4)
    sb3_result = {"solved": True, "solved_at_seconds": 8.0, "import_seconds": 2.5}
    sb3 = bench.in_run_fields("sb3_ppo", "", sb3_result)
    assert sb3["in_run_to_solve_seconds"] == 5.5 and sb3["trace_seconds"] is None
    unsolved = bench.in_run_fields("tfa_ppo", "", {"solved": False, "solved_at_seconds": None})
    assert unsolved["in_run_to_solve_seconds"] is None
