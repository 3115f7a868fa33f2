"""Wall seconds to solve, tfa_suite vs Stable-Baselines3: the one harness behind
bench_cartpole.py, bench_continuous.py and bench_onpolicy.py.

Each of those scripts declares a `Suite`: its systems (a tfa_suite config run by
`experiments/train.py`, or an SB3 peer script taking sb3_harness.py's flags), which
tfa_suite system is compared with which peer and what ratio is aimed for, where its JSON
and its section of docs/benchmarks.md go, and the text saying what is measured. This module
owns the rest: the flags, the commands, the runs, the medians, the ratios and the report.

What is measured. Every system x seed is a fresh subprocess in a fresh temp dir, one at a
time, seed-major (a drifting machine load then hits every system alike). Both sides score
the greedy policy's mean return over the configs' --eval_episodes fresh gymnasium episodes
(seeds seed + EVAL_SEED_OFFSET + i) every --eval_interval env steps against their
--target_return (the suite's default where they have none), and stop once it is met.
The harness clock runs from just before `Popen` to process exit; the headline "s to
solve" is that minus the process's own post-solve tail (`wall_seconds -
solved_at_seconds` in the result JSON it writes), so interpreter start, imports, tracing
and every evaluation are inside. The run's own clock at the
solving evaluation splits it into start-up and in-run seconds, and tfa_suite's `traced ...
in X s` lines give its tracing time. An unsolved run counts as infinitely slow in the
s-to-solve median; the other medians are over solved runs. A peer ratio is the SB3 median
s to solve over the tfa_suite system's (> 1: tfa_suite is faster).

Imported as a sibling module: `python benchmarks/<script>.py` puts benchmarks/ on sys.path.
TensorFlow is never imported here; `tfa_suite.config` is pure Python.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, NoReturn

from tfa_suite.config import EVAL_SEED_OFFSET

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "benchmarks.md"
TRAIN = "experiments/train.py"
PACKAGES = ("tensorflow", "tf-agents", "torch", "stable-baselines3", "gymnasium", "numpy")
MEDIANS_OF_SOLVED = ("process_seconds", "env_steps", "gradient_steps", "env_steps_per_second")
IN_RUN_MEDIANS = ("in_run_to_solve_seconds", "startup_seconds", "trace_seconds")
# Where a run reports its tracing time: a result.json field, else stdout lines such as
# "[    1s] traced the training loop in 2.3 s" (every such line is summed).
TRACE_FIELDS = ("trace_seconds", "tracing_seconds", "compile_seconds")
TRACE_LINE = re.compile(r"\btraced\b.*?\bin\s+(\d+(?:\.\d+)?)\s*s(?:ec(?:ond)?s?)?\b", re.I)


# --- what a suite declares -------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class System:
    """One contender. tfa_suite: `experiments/train.py --flagfile=<cfg>` plus `flags`; SB3:
    `<script>` plus `flags` (e.g. `--algo=td3`) plus sb3_harness.py's common flags."""

    label: str  # its row in the summary tables
    cfg: Path | None = None
    script: str | None = None  # relative to the repo, the subprocess's cwd
    flags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if (self.cfg is None) == (self.script is None):
            raise ValueError(f"{self.label}: give exactly one of cfg (tfa_suite) or script (SB3)")

    @property
    def is_peer(self) -> bool:
        return self.script is not None


def tfa(label: str, cfg: Path, *flags: str) -> System:
    return System(label, cfg=cfg, flags=flags)


def sb3(label: str, script: str, *flags: str) -> System:
    return System(label, script=script, flags=flags)


@dataclasses.dataclass(frozen=True)
class Pairing:
    """A tfa_suite system (`this`) against the SB3 system it is compared with (`peer`)."""

    name: str  # its key in the JSON's goal_ratios, upper-cased in the goal-ratio sentence
    this: str
    peer: str
    key: str = ""  # its key in the JSON's ratios; "" means "<peer>_over_<this>"
    in_sentence: bool = True  # named in the goal-ratio sentence under the summary table
    goal: float | None = None  # the SB3 ÷ tfa_suite median s to solve aimed for

    @property
    def ratio_key(self) -> str:
        return self.key or f"{self.peer}_over_{self.this}"


@dataclasses.dataclass(frozen=True)
class Suite:
    """One benchmark: everything that differs between bench_cartpole, _continuous and
    _onpolicy. The tfa_suite configs' --eval_interval, --eval_episodes and --target_return
    must agree: the SB3 peers get the same."""

    title: str  # the --help description
    make_target: str  # the report says `make <make_target>`
    env_id: str
    benchmark: str  # the JSON's "benchmark"; "{target:g}" becomes the target return
    results: Path
    markers: tuple[str, str]  # start and end comments of the section in docs/benchmarks.md
    systems: dict[str, System]
    pairings: tuple[Pairing, ...]
    measured: str
    heading: str = ""  # put above the markers when the doc has none yet
    default_target: float | None = None  # for configs without --target_return
    smoke_env_steps: int = 0  # > 0: offers --smoke, one seed with this env-step budget
    cfg_flag: bool = False  # offers --cfg, another flagfile for the (one) tfa_suite config
    packages: tuple[str, ...] = PACKAGES

    def __post_init__(self) -> None:
        for p in self.pairings:
            this, peer = self.systems.get(p.this), self.systems.get(p.peer)
            if this is None or peer is None or this.is_peer or not peer.is_peer:
                raise ValueError(f"pairing {p.name}: {p.this} must be tfa_suite, {p.peer} SB3")
        if self.cfg_flag and len(self.cfgs()) != 1:
            raise ValueError("--cfg needs the suite's tfa_suite systems to share one config")

    def cfgs(self) -> set[Path]:
        return {s.cfg for s in self.systems.values() if s.cfg is not None}


# --- building blocks of the MEASURED texts ----------------------------------------------

S_TO_SOLVE = (
    "**s to solve** (headline): harness clock from just before `Popen` to process exit, minus "
    "the process's own post-solve tail (`wall_seconds - solved_at_seconds` in its result JSON: "
    "tfa_suite's last checkpoint, policy export, reload, re-score and plot; SB3: nothing)."
)
IN_RUN = (
    "**in-run s**: the process's own clock at the solving evaluation, from the end of its "
    "imports: tfa_suite's `solved_at_seconds` (`train()`'s clock; flag parsing and tracing "
    "inside), SB3's `solved_at_seconds - import_seconds`. **start-up s**: s to solve - in-run "
    "s (interpreter start and imports, and for tfa_suite flag parsing and config). **trace "
    "s**: tfa_suite's tracing time as the run reports it (`traced ... in X s` lines on its "
    "stdout, summed; – when it prints none)."
)
STALL_AND_MEDIANS = (
    "**CPU stall %**: share of the run's time in which some runnable task waited for a CPU "
    "(Linux PSI, the run's own threads included); high values mean a contended machine. An "
    "unsolved run counts as infinitely slow in the s-to-solve median; the other medians are "
    "over solved runs."
)


def measured_text(*, inside: str, steps: str, runs: str, ratio: str = "") -> str:
    """A suite's "What is measured" paragraph: the shared definitions around its own
    sentences on what the clock includes (`inside`), how steps count (`steps`), what each
    side runs (`runs`) and, if it says more than the default, the ratio column (`ratio`)."""
    parts = [
        S_TO_SOLVE, inside, "**process s**: `Popen` to exit, everything.", steps,
        "**env steps/s**: env steps / s to solve.", IN_RUN, ratio, STALL_AND_MEDIANS, runs,
    ]  # fmt: skip
    return " ".join(p for p in parts if p)


# --- one invocation ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Settings:
    """What every command of one invocation shares."""

    eval_interval: int
    eval_episodes: int
    target_return: float
    sb3_torch_threads: int = 1  # 0: torch's default
    max_env_steps: int = 0  # 0: each side's own budget
    eval_seed_offset: int = EVAL_SEED_OFFSET


@dataclasses.dataclass(frozen=True)
class Plan:
    """A parsed and checked command line: what to run and where the report goes."""

    suite: Suite
    systems: dict[str, System]  # the chosen ones, in the suite's order, --cfg applied
    seeds: list[int]
    settings: Settings
    timeout: float
    out: Path
    doc: Path
    mode: str
    cfg: Path | None  # the tfa_suite flagfile, where the suite offers --cfg


def fail(message: str) -> NoReturn:
    """Ends the harness on a user error: one `error:` line, exit status 2."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one `error:` line and exit status 2 (`fail`), not usage."""

    def error(self, message: str) -> NoReturn:
        fail(message)


def parse_seeds(text: str) -> list[int]:
    seeds = []
    for part in (p.strip() for p in text.split(",")):
        if part:
            try:
                seeds.append(int(part))
            except ValueError:
                raise argparse.ArgumentTypeError(f"{part!r} is not an integer seed") from None
    if not seeds:
        raise argparse.ArgumentTypeError("no seeds given")
    return seeds


def make_parser(suite: Suite) -> argparse.ArgumentParser:
    parser = OneLineParser(description=suite.title)
    names = ", ".join(suite.systems)
    parser.add_argument("--seeds", type=parse_seeds, default=[0, 1, 2], help="comma-separated")
    parser.add_argument("--systems", default=",".join(suite.systems), help=names)
    parser.add_argument("--quick", action="store_true", help="one seed (the first)")
    if suite.smoke_env_steps:
        parser.add_argument(
            "--smoke",
            action="store_true",
            help=f"--quick with a {suite.smoke_env_steps:,}-step budget, writing to the temp "
            "dir unless --out/--doc are given (unsolved runs are expected)",
        )
    if suite.cfg_flag:
        (cfg,) = suite.cfgs()
        parser.add_argument(
            "--cfg", type=Path, default=cfg, help=f"tfa_suite's flagfile ({shown(cfg)})"
        )
    parser.add_argument(
        "--max_env_steps",
        type=int,
        default=0,
        help="env-step budget of every run: tfa_suite's --num_env_steps, SB3's "
        "--max_env_steps (0: each side's own)",
    )
    parser.add_argument("--out", type=Path, help=f"JSON (default {shown(suite.results)})")
    parser.add_argument("--doc", type=Path, help=f"markdown (default {shown(DOC)})")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per run")
    parser.add_argument("--sb3_torch_threads", type=int, default=1, help="0: torch's default")
    return parser


def make_plan(suite: Suite, argv: Sequence[str] | None = None) -> Plan:
    """Parses `argv` (default sys.argv[1:]) and reads the configs; bad input ends in `fail`."""
    args = make_parser(suite).parse_args(argv)
    smoke = getattr(args, "smoke", False)
    names = [s.strip() for s in args.systems.split(",") if s.strip()]
    if not names:
        fail("--systems: no systems given")
    if unknown := sorted(set(names) - set(suite.systems)):
        fail(f"unknown systems {unknown}; choose from {', '.join(suite.systems)}")
    if args.max_env_steps < 0:
        fail(f"--max_env_steps must be >= 0, not {args.max_env_steps}")
    if args.sb3_torch_threads < 0:
        fail(f"--sb3_torch_threads must be >= 0, not {args.sb3_torch_threads}")
    if not args.timeout > 0:
        fail(f"--timeout must be > 0 seconds, not {args.timeout}")
    cfg = args.cfg.resolve() if suite.cfg_flag else None
    systems = {
        name: dataclasses.replace(system, cfg=cfg) if cfg and system.cfg else system
        for name, system in suite.systems.items()
    }
    interval, episodes, target = eval_settings(systems, suite.default_target)
    max_env_steps = args.max_env_steps or (suite.smoke_env_steps if smoke else 0)
    settings = Settings(interval, episodes, target, args.sb3_torch_threads, max_env_steps)
    tmp = Path(tempfile.gettempdir())
    smoke_name = f"{suite.results.stem}-bench-smoke"
    if smoke:
        mode = "smoke test, 1 seed"
    elif args.quick:  # "smoke test" was --quick's name in the suites that have no --smoke
        mode = "quick, 1 seed" if suite.smoke_env_steps else "quick smoke test, 1 seed"
    else:
        mode = "full"
    return Plan(
        suite=suite,
        systems={name: systems[name] for name in dict.fromkeys(names)},  # the order given
        seeds=args.seeds[: 1 if args.quick or smoke else None],
        settings=settings,
        timeout=args.timeout,
        out=args.out or (tmp / f"{smoke_name}.json" if smoke else suite.results),
        doc=args.doc or (tmp / f"{smoke_name}.md" if smoke else DOC),
        mode=mode,
        cfg=cfg,
    )


def read_cfg(path: Path) -> dict[str, str]:
    """The `--name=value` lines of a flagfile."""
    pairs = (line.strip()[2:].split("=", 1) for line in path.read_text().splitlines())
    return {p[0]: p[1] for p in pairs if len(p) == 2}


def eval_settings(
    systems: dict[str, System], default_target: float | None
) -> tuple[int, int, float]:
    """The eval interval, episodes and target of the tfa_suite configs, which must agree
    because the SB3 peers get them too."""
    found: dict[str, tuple[int, int, float]] = {}
    for name, system in systems.items():
        if system.cfg is None:
            continue
        where = shown(system.cfg)
        if not system.cfg.is_file():
            fail(f"{where} not found (the flagfile of {name})")
        cfg = read_cfg(system.cfg)
        if missing := [k for k in ("eval_interval", "eval_episodes") if k not in cfg]:
            fail(f"{where} has no {', '.join(f'--{k}' for k in missing)}")
        target = cfg.get("target_return", default_target)
        if target is None:
            fail(f"{where} has no --target_return")
        try:
            found[where] = (int(cfg["eval_interval"]), int(cfg["eval_episodes"]), float(target))
        except ValueError as e:
            fail(f"{where}: {e}")
    if len(set(found.values())) != 1:
        fail(f"the configs disagree on (eval_interval, eval_episodes, target_return): {found}")
    return next(iter(found.values()))


def command(system: System, seed: int, out_dir: Path, settings: Settings) -> tuple[list[str], Path]:
    """The subprocess argv for one run (cwd: the repo) and the result JSON it writes."""
    cap = settings.max_env_steps
    if system.script is not None:
        result = out_dir / "result.json"
        return [
            sys.executable, system.script, *system.flags, f"--seed={seed}",
            f"--eval_interval={settings.eval_interval}",
            f"--eval_episodes={settings.eval_episodes}",
            f"--eval_seed_offset={settings.eval_seed_offset}",
            f"--target={settings.target_return}",
            f"--torch_threads={settings.sb3_torch_threads}", f"--out={result}",
            *([f"--max_env_steps={cap}"] if cap else []),
        ], result  # fmt: skip
    assert system.cfg is not None
    return [
        sys.executable, TRAIN, f"--flagfile={shown(system.cfg)}", f"--seed={seed}",
        f"--root_dir={out_dir / 'run'}", "--video_episodes=0",
        *([f"--num_env_steps={cap}"] if cap else []), *system.flags,
    ], out_dir / "run" / "result.json"  # fmt: skip


# --- running ----------------------------------------------------------------------------


def cpu_stall_seconds() -> float | None:
    """Linux PSI: total time some runnable task waited for a CPU (None without PSI)."""
    try:
        return int(Path("/proc/pressure/cpu").read_text().split("total=", 1)[1].split()[0]) / 1e6
    except (OSError, IndexError, ValueError):
        return None


def trace_seconds(log: str, result: dict[str, Any]) -> float | None:
    """The run's tracing time: a result.json field if it has one, else the sum of its
    `traced ... in X s` stdout lines; None when it reports neither."""
    for key in TRACE_FIELDS:
        if isinstance(result.get(key), int | float):
            return float(result[key])
    found = [float(m.group(1)) for line in log.splitlines() if (m := TRACE_LINE.search(line))]
    return sum(found) if found else None


def in_run_fields(is_peer: bool, log: str, result: dict[str, Any]) -> dict[str, Any]:
    """The row's in-run figures, from the run's stdout and result JSON."""
    solved_at = result.get("solved_at_seconds") if result.get("solved") else None
    if solved_at is not None and is_peer:
        solved_at -= result.get("import_seconds", 0.0)  # SB3's clock starts before its imports
    return {
        "in_run_to_solve_seconds": solved_at,
        "trace_seconds": None if is_peer else trace_seconds(log, result),
        "trace_lines": [ln.strip() for ln in log.splitlines() if TRACE_LINE.search(ln)],
    }


def make_row(
    name: str,
    system: System,
    seed: int,
    *,
    argv: list[str],
    returncode: int | None,
    process_seconds: float,
    stall_seconds: float | None,
    result: dict[str, Any],
    log: str,
) -> dict[str, Any]:
    """One run's row of the report from what the harness saw (`returncode` None: timed
    out) and the result JSON the run wrote (empty if none)."""
    solved = bool(result.get("solved")) and result.get("solved_at_seconds") is not None
    stall = None if stall_seconds is None else 100 * stall_seconds / process_seconds
    row: dict[str, Any] = {
        "system": name, "seed": seed, "solved": solved, "returncode": returncode,
        "process_seconds": process_seconds, "to_solve_seconds": None, "env_steps": None,
        "gradient_steps": None, "env_steps_per_second": None, "cpu_stall_percent": stall,
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
    row.update(in_run_fields(system.is_peer, log, result))
    to_solve, in_run = row["to_solve_seconds"], row["in_run_to_solve_seconds"]
    row["startup_seconds"] = None if to_solve is None or in_run is None else to_solve - in_run
    return row


def run_one(
    name: str, system: System, seed: int, settings: Settings, timeout: float
) -> dict[str, Any]:
    """One run in a fresh subprocess and tmp dir, timed from just before `Popen` to exit."""
    out_dir = Path(tempfile.mkdtemp(prefix=f"bench-{name}-{seed}-"))
    try:
        argv, result_path = command(system, seed, out_dir, settings)
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
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    if returncode != 0 or not result:
        tail = log_text.splitlines()[-15:]
        print(f"  {name} seed {seed} failed (exit {returncode}):", *tail, sep="\n    ")
    stall = None if stall_before is None or stall_after is None else stall_after - stall_before
    return make_row(
        name, system, seed, argv=argv, returncode=returncode, process_seconds=process_seconds,
        stall_seconds=stall, result=result, log=log_text,
    )  # fmt: skip


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


# --- summaries and ratios ---------------------------------------------------------------


def median(values: Sequence[float | None], unsolved_as_inf: bool = False) -> float | None:
    """Median of the known values; with `unsolved_as_inf` a None counts as infinitely slow,
    and an infinite median comes back as None (JSON has no infinity)."""
    xs = [math.inf if v is None else v for v in values] if unsolved_as_inf else values
    known = [v for v in xs if v is not None]
    m = statistics.median(known) if known else None
    return None if m is None or math.isinf(m) else m


def summarize(runs: list[dict[str, Any]], systems: dict[str, System]) -> dict[str, Any]:
    """Per system: its label, solved count and medians (see `median` for unsolved runs)."""
    summary: dict[str, Any] = {}
    for name, system in systems.items():
        rows = [r for r in runs if r["system"] == name]
        entry = summary[name] = {
            "label": system.label,
            "solved": f"{sum(r['solved'] for r in rows)}/{len(rows)}",
            "median_to_solve_seconds": median([r["to_solve_seconds"] for r in rows], True),
        }
        for key in (*MEDIANS_OF_SOLVED, *IN_RUN_MEDIANS):
            entry[f"median_{key}"] = median([r[key] for r in rows if r["solved"]])
    return summary


def peer_ratios(summary: dict[str, Any], pairings: Sequence[Pairing]) -> dict[str, float]:
    """Per pairing of systems in `summary`, the peer's median s to solve over tfa_suite's
    (`<key>`, > 1: tfa_suite faster), and the same for the in-run s (`in_run_<key>`). The
    first also goes into the tfa_suite system's summary as `peer_over_this`."""
    ratios: dict[str, float] = {}
    for p in pairings:
        this, peer = summary.get(p.this), summary.get(p.peer)
        if this is None or peer is None:
            continue
        for metric, prefix in (("to_solve_seconds", ""), ("in_run_to_solve_seconds", "in_run_")):
            top, bottom = peer.get(f"median_{metric}"), this.get(f"median_{metric}")
            if top is not None and bottom:
                ratios[f"{prefix}{p.ratio_key}"] = top / bottom
        if (ratio := ratios.get(p.ratio_key)) is not None:
            this["peer_over_this"] = ratio
    return ratios


def ratio_sentence(
    pairings: Sequence[Pairing], summary: dict[str, Any], ratios: dict[str, float]
) -> str:
    """`SB3 ÷ tfa_suite, median s to solve: TD3 4.6x (goal >= 2: met), ...; median in-run s:
    ...` for the sentence pairings whose systems both ran; names only when there are several."""
    named = sum(p.in_sentence for p in pairings) > 1
    shown_pairs = [p for p in pairings if p.in_sentence and p.this in summary and p.peer in summary]
    if not shown_pairs:
        return ""
    to_solve, in_run = [], []
    for p in shown_pairs:
        name = f"{p.name.upper()} " if named else ""
        ratio = ratios.get(p.ratio_key)
        text = name + (f"{ratio:.1f}x" if ratio else "–")
        if p.goal:
            verdict = "" if ratio is None else (": met" if ratio >= p.goal else ": not met")
            text += f" (goal >= {p.goal:g}{verdict})"
        to_solve.append(text)
        if (ratio := ratios.get(f"in_run_{p.ratio_key}")) is not None:
            in_run.append(f"{name}{ratio:.1f}x")
    text = "SB3 ÷ tfa_suite, median s to solve: " + ", ".join(to_solve)
    return text + ("; median in-run s: " + ", ".join(in_run) if in_run else "") + "."


# --- the report -------------------------------------------------------------------------


def package_version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine_info(packages: Sequence[str]) -> dict[str, Any]:
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


def in_run_table(summary: dict[str, Any], runs: list[dict[str, Any]]) -> list[str]:
    """Per system the medians, then per run: s to solve split into start-up and in-run."""
    lines = [md_row(["system", "seed", "s to solve", "start-up s", "in-run s", "trace s"])]
    lines.append(md_row(["---", "---"] + ["---:"] * 4))
    for row in summary.values():
        lines.append(md_row([
            row["label"], "median", fmt(row["median_to_solve_seconds"], ".1f"),
            fmt(row["median_startup_seconds"], ".1f"),
            fmt(row["median_in_run_to_solve_seconds"], ".1f"),
            fmt(row["median_trace_seconds"], ".1f"),
        ]))  # fmt: skip
    for r in runs:
        lines.append(md_row([
            r["system"], r["seed"], fmt(r["to_solve_seconds"], ".1f"),
            fmt(r["startup_seconds"], ".1f"), fmt(r["in_run_to_solve_seconds"], ".1f"),
            fmt(r["trace_seconds"], ".1f"),
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


def make_report(
    plan: Plan, runs: list[dict[str, Any]], load_before: float, load_after: float
) -> dict[str, Any]:
    """The JSON written to --out: settings, machine, medians, ratios and every run."""
    suite, settings = plan.suite, plan.settings
    summary = summarize(runs, plan.systems)
    goals = {p.name: p.goal for p in suite.pairings if p.goal is not None}
    report: dict[str, Any] = {
        "benchmark": suite.benchmark.format(target=settings.target_return),
        "mode": plan.mode,
        "seeds": plan.seeds,
        **({"cfg": shown(plan.cfg)} if plan.cfg else {}),
        "eval_interval": settings.eval_interval,
        "eval_episodes": settings.eval_episodes,
        "target_return": settings.target_return,
        "max_env_steps": settings.max_env_steps or None,
        "sb3_torch_threads": settings.sb3_torch_threads,
        "finished": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average": {"before": load_before, "after": load_after},
        "machine": machine_info(suite.packages),
        "measured": suite.measured,
        "goal_ratios": goals,
        # a suite with one goal has always written it under this key too
        **({"goal_ratio": next(iter(goals.values()))} if len(goals) == 1 else {}),
        "ratios": peer_ratios(summary, suite.pairings),
        "summary": summary,
        "runs": runs,
    }
    return report


def markdown(suite: Suite, report: dict[str, Any]) -> str:
    """The section between the suite's markers in docs/benchmarks.md."""
    budget = report["max_env_steps"]
    lines = [
        f"Command: `make {suite.make_target}` ({report['mode']}; seeds {report['seeds']}; SB3 "
        f"torch threads {report['sb3_torch_threads'] or 'default'}"
        + (f"; env-step budget {budget:,}" if budget else "")
        + (f"; `--flagfile={report['cfg']}`" if "cfg" in report else "")
        + f"). {machine_sentence(report)}",
        "",
        f"Goal: greedy mean return over {report['eval_episodes']} evaluation episodes on "
        f"gymnasium {suite.env_id} >= {report['target_return']:g}, checked every "
        f"{report['eval_interval']} env steps. Medians over seeds:",
        "",
        *summary_table(report["summary"]),
    ]
    if sentence := ratio_sentence(suite.pairings, report["summary"], report["ratios"]):
        lines += ["", sentence]
    lines += ["", "Where the seconds to solve go:", ""]
    lines += in_run_table(report["summary"], report["runs"])
    lines += ["", *runs_table(report["runs"])]
    return "\n".join([*lines, "", "What is measured: " + report["measured"]])


def write_doc(doc: Path, start: str, end: str, text: str, heading: str = "") -> None:
    """Replaces what is between the markers in `doc`, and nothing else. Missing markers are
    appended at the end, after `heading` (a markdown line) if given."""
    old = doc.read_text() if doc.exists() else "# Benchmarks\n"
    if start not in old or end not in old:
        old = old.rstrip("\n") + (f"\n\n{heading}" if heading else "") + f"\n\n{start}\n{end}\n"
    head, rest = old.split(start, 1)
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(f"{head}{start}\n{text}\n{end}{rest.split(end, 1)[1]}")


def shown(path: Path) -> str:
    """`path` relative to the repo when it is inside it."""
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def main(suite: Suite, argv: Sequence[str] | None = None) -> None:
    """Runs the suite as the command line asks, writes its JSON and doc section, and exits
    non-zero if any run failed or timed out."""
    plan = make_plan(suite, argv)

    def run(name: str, seed: int) -> dict[str, Any]:
        return run_one(name, plan.systems[name], seed, plan.settings, plan.timeout)

    runs, load_before = run_all(list(plan.systems), plan.seeds, run)
    report = make_report(plan, runs, load_before, os.getloadavg()[0])
    plan.out.parent.mkdir(parents=True, exist_ok=True)
    plan.out.write_text(json.dumps(report, indent=2) + "\n")
    start, end = suite.markers
    write_doc(plan.doc, start, end, text := markdown(suite, report), heading=suite.heading)
    print(f"\nwrote {shown(plan.out.resolve())} and {shown(plan.doc.resolve())}\n\n{text}")
    if failed := [f"{r['system']} seed {r['seed']}" for r in runs if r["returncode"] != 0]:
        sys.exit(f"runs that failed or timed out: {', '.join(failed)}")
