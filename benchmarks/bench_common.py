"""What the wall-time-to-solve benchmarks share: timed subprocess runs, medians, the
machine header and the markdown table between markers in docs/benchmarks.md.

Used by bench_cartpole.py, bench_continuous.py and bench_onpolicy.py (imported as a
sibling module: running `python benchmarks/<script>.py` puts benchmarks/ on sys.path).
"""

from __future__ import annotations

import ast
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "benchmarks.md"
MEDIANS_OF_SOLVED = ("process_seconds", "env_steps", "gradient_steps", "env_steps_per_second")
# out_dir -> (the subprocess argv for one run, the result JSON it writes)
Command = Callable[[Path], tuple[list[str], Path]]


def read_cfg(path: Path) -> dict[str, str]:
    """The `--name=value` lines of a flagfile."""
    pairs = (line.strip()[2:].split("=", 1) for line in path.read_text().splitlines())
    return {p[0]: p[1] for p in pairs if len(p) == 2}


def eval_seed_offset() -> int:
    """tfa_suite.training.EVAL_SEED_OFFSET, read without importing TensorFlow."""
    for node in ast.parse((REPO / "tfa_suite" / "training.py").read_text()).body:
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "EVAL_SEED_OFFSET":
            return int(ast.literal_eval(node.value))
    raise SystemExit("EVAL_SEED_OFFSET not found in tfa_suite/training.py")


def cpu_stall_seconds() -> float | None:
    """Linux PSI: total time some runnable task waited for a CPU (None without PSI)."""
    try:
        return int(Path("/proc/pressure/cpu").read_text().split("total=", 1)[1].split()[0]) / 1e6
    except (OSError, IndexError, ValueError):
        return None


def run_one(
    system: str,
    seed: int,
    command: Command,
    timeout: float,
    extra: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One run in a fresh subprocess and tmp dir, timed from just before `Popen` to exit.

    `extra(log, result)`, given the run's stdout+stderr and its result JSON (empty if it
    wrote none) before the tmp dir is removed, returns more fields for the row."""
    out_dir = Path(tempfile.mkdtemp(prefix=f"bench-{system}-{seed}-"))
    try:
        argv, result_path = command(out_dir)
        with open(out_dir / "log.txt", "w") as log:
            stall_before, start = cpu_stall_seconds(), time.monotonic()
            proc = subprocess.Popen(argv, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
            try:
                returncode: int | None = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                returncode = None
            process_seconds, stall_after = time.monotonic() - start, cpu_stall_seconds()
        result = json.loads(result_path.read_text()) if result_path.exists() else {}
        log_text = (out_dir / "log.txt").read_text(errors="replace")
        if returncode != 0 or not result:
            tail = log_text.splitlines()[-15:]
            print(f"  {system} seed {seed} failed (exit {returncode}):", *tail, sep="\n    ")
        extra_fields = extra(log_text, result) if extra else {}
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    stall = None if stall_before is None or stall_after is None else stall_after - stall_before
    solved = bool(result.get("solved")) and result.get("solved_at_seconds") is not None
    row: dict[str, Any] = {
        "system": system, "seed": seed, "solved": solved, "returncode": returncode,
        "process_seconds": process_seconds, "to_solve_seconds": None, "env_steps": None,
        "gradient_steps": None, "env_steps_per_second": None,
        "cpu_stall_percent": None if stall is None else 100 * stall / process_seconds,
        "final_eval_mean": result.get("final_eval_mean"),
        "eval_seconds": result.get("eval_seconds"), "command": " ".join(argv),
    }  # fmt: skip
    if solved:
        tail_seconds = result["wall_seconds"] - result["solved_at_seconds"]
        to_solve = process_seconds - tail_seconds
        env_steps = result["solved_at_env_steps"]
        row.update(
            to_solve_seconds=to_solve, post_solve_tail_seconds=tail_seconds,
            in_process_solved_at_seconds=result["solved_at_seconds"], env_steps=env_steps,
            # tfa_suite stops at the solving evaluation: its final train_steps is the count then.
            gradient_steps=result.get("solved_at_train_steps", result["train_steps"]),
            env_steps_per_second=env_steps / to_solve,
        )  # fmt: skip
    row.update(extra_fields)
    return row


def run_all(
    systems: list[str], seeds: list[int], run: Callable[[str, int], dict[str, Any]]
) -> tuple[list[dict[str, Any]], float]:
    """Every system x seed, one process at a time; the rows and the load average before."""
    load_before = os.getloadavg()[0]
    print(f"{len(systems)} systems x seeds {seeds}, one process at a time "
          f"(load average {load_before:.2f} on {os.cpu_count()} cores)", flush=True)  # fmt: skip
    runs: list[dict[str, Any]] = []
    for seed in seeds:  # seed-major, so a drifting machine load hits every system alike
        for system in systems:
            print(f"running {system} seed {seed} ...", flush=True)
            runs.append(row := run(system, seed))
            print(f"  solved={row['solved']}  to solve {fmt(row['to_solve_seconds'], '.1f')} s  "
                  f"process {row['process_seconds']:.1f} s  env steps {row['env_steps']}  "
                  f"grad steps {row['gradient_steps']}", flush=True)  # fmt: skip
    return runs, load_before


def median(values: list[float | None], unsolved_as_inf: bool = False) -> float | None:
    """Median of the known values; with `unsolved_as_inf` a None counts as infinitely slow,
    and an infinite median comes back as None (JSON has no infinity)."""
    xs = [math.inf if v is None else v for v in values] if unsolved_as_inf else values
    known = [v for v in xs if v is not None]
    m = statistics.median(known) if known else None
    return None if m is None or math.isinf(m) else m


def summarize(
    runs: list[dict[str, Any]], systems: list[str], labels: dict[str, str]
) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for system in systems:
        rows = [r for r in runs if r["system"] == system]
        summary[system] = {
            "label": labels[system],
            "solved": f"{sum(r['solved'] for r in rows)}/{len(rows)}",
            "median_to_solve_seconds": median([r["to_solve_seconds"] for r in rows], True),
        }
        for key in MEDIANS_OF_SOLVED:
            summary[system][f"median_{key}"] = median([r[key] for r in rows if r["solved"]])
    return summary


def package_version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine_info(packages: tuple[str, ...]) -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    models = [
        line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if "model name" in line
    ]
    git = ["git", "-C", str(REPO)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run([*git, "status", "--porcelain"], capture_output=True, text=True)
    return {
        "cpu_model": models[0] if models else platform.processor(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {p: package_version(p) for p in packages},
        "git_commit": commit.stdout.strip() + ("-dirty" if dirty.stdout.strip() else ""),
    }


def machine_sentence(report: dict[str, Any]) -> str:
    """`Run <when> on <cpu>, <n> cores, <load>; tfa_suite <commit>, <versions>.`"""
    m, load = report["machine"], report["load_average"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    return (
        f"Run {report['finished']} on {m['cpu_model']}, {m['cores']} cores, 1-min load "
        f"average {load['before']:.2f} before, {load['after']:.2f} after; tfa_suite "
        f"{m['git_commit']}, {versions}."
    )


def fmt(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def md_row(cells: list[object]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


COLUMNS = ["s to solve", "process s", "env steps", "grad steps", "env steps/s"]


def summary_table(summary: dict[str, Any]) -> list[str]:
    """One row of medians per system; the last column is its `peer_over_this` ratio."""
    lines = [md_row(["system", "solved", *COLUMNS, "SB3 ÷ this"])]
    lines.append(md_row(["---", "---"] + ["---:"] * 6))
    for row in summary.values():
        ratio = row.get("peer_over_this")
        lines.append(md_row([
            row["label"], row["solved"], fmt(row["median_to_solve_seconds"], ".1f"),
            fmt(row["median_process_seconds"], ".1f"), fmt(row["median_env_steps"], ",.0f"),
            fmt(row["median_gradient_steps"], ",.0f"),
            fmt(row["median_env_steps_per_second"], ",.0f"), f"{ratio:.1f}x" if ratio else "–",
        ]))  # fmt: skip
    return lines


def runs_table(runs: list[dict[str, Any]]) -> list[str]:
    lines = [md_row(["system", "seed", "solved", *COLUMNS, "CPU stall %"])]
    lines.append(md_row(["---"] * 3 + ["---:"] * 6))
    for r in runs:
        lines.append(md_row([
            r["system"], r["seed"], "yes" if r["solved"] else "no",
            fmt(r["to_solve_seconds"], ".1f"), fmt(r["process_seconds"], ".1f"),
            fmt(r["env_steps"], ","), fmt(r["gradient_steps"], ","),
            fmt(r["env_steps_per_second"], ",.0f"), fmt(r["cpu_stall_percent"], ".0f"),
        ]))  # fmt: skip
    return lines


def write_doc(doc: Path, start: str, end: str, markdown: str, heading: str = "") -> None:
    """Replaces what is between the markers in `doc`, and nothing else. Missing markers are
    appended at the end, after `heading` (a markdown line) if given."""
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    if start not in text or end not in text:
        text = text.rstrip("\n") + (f"\n\n{heading}" if heading else "") + f"\n\n{start}\n{end}\n"
    head, rest = text.split(start, 1)
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(f"{head}{start}\n{markdown}\n{end}{rest.split(end, 1)[1]}")


def shown(path: Path) -> str:
    """`path` relative to the repo when it is inside it."""
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def exit_if_failed(runs: list[dict[str, Any]]) -> None:
    if failed := [f"{r['system']} seed {r['seed']}" for r in runs if r["returncode"] != 0]:
        sys.exit(f"runs that failed or timed out: {', '.join(failed)}")
