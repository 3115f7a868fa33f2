"""benchmarks/results_table.py: the interval table beside each per-seed table, and the
suites' entries (FrozenLake's included) resolve to shipped configs."""

from __future__ import annotations

import pytest

from tests.benchmarks import import_benchmarks


@pytest.fixture(scope="module")
def results_table():
    (results_table,) = import_benchmarks("results_table")
    return results_table


def _row(agent: str, seed: int, score: float, steps: int) -> dict:
    return {
        "agent": agent, "seed": seed, "solved": True, "env_steps": steps,
        "evaluate_py_100_unseen": score,
    }  # fmt: skip


def test_the_interval_table_has_each_entrys_iqm_and_median_steps(results_table):
    pytest.importorskip("rliable")
    scores = [0.70, 0.72, 0.74, 0.10, 0.76]  # IQM drops 0.10 and 0.76
    rows = [_row("tabular_q", s, v, 1000 * (s + 1)) for s, v in enumerate(scores)]
    rows.append(_row("dqn", 0, 1.0, 500))
    table = results_table.interval_table(rows, "<!-- s -->", "<!-- e -->")
    assert table[0] == "<!-- s -->" and table[-1] == "<!-- e -->"
    (line,) = [t for t in table if t.startswith("| tabular_q |")]
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[1:4] == ["0, 1, 2, 3, 4", "5/5", "3,000"]
    assert cells[4].startswith("0.72 [") and cells[5].startswith("0.72 [")
    assert any(t.startswith("| dqn | 0 | 1/1 | 500 | 1.00 [1.00, 1.00]") for t in table)


def test_every_suite_entry_has_its_config_and_a_matching_env_id(results_table):
    for _, entries in results_table.SUITES.values():
        results_table.check_configs(entries)  # exits on a missing config or target
        for entry in entries:
            assert results_table.env_id(entry).count("-v") == 1, entry.env
    tabular = {e.label: e for e in results_table.SUITES["tabular"][1]}
    deterministic = tabular["dqn (FrozenLake, deterministic)"]
    assert '--env_kwargs={"is_slippery": false}' in deterministic.flags
