"""Where the time goes in one PPO and one DQN CartPole run, from process start to solve.

    make bench-profile                 # cartpole_ppo.cfg and cartpole.cfg, seed 0, to solve
    make bench-profile ARGS=--quick    # short budgets (unsolved) and short timings: a smoke test

Each run does `experiments/train.py`'s work in a fresh process (this script with --worker):
the same imports, flags, `train(config)`, session, loop and evaluations, timed from outside.
The worker wraps, in its own process only, the calls the session makes (`build`, the loop's
`prefill` / `compile` / `run`, the in-graph evaluator, the gymnasium evaluation, metrics
rows, checkpoints); nothing in the library changes. It traces each compiled function
explicitly just before its first use (`get_concrete_function`, then a call of 0 loop
iterations for the graph optimization), so tracing is split from running. After the run it
times the train step alone and the collection alone (bench_bound.py's helpers) to split the
compiled calls into collection, train steps and the rest. Separately, `python -X importtime`
of train.py's imports gives the import time per package.

Writes benchmarks/results/profile.json and the profile section of docs/benchmarks.md (--out
and --doc elsewhere).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results" / "profile.json"
MARKERS = ("<!-- profile:start -->", "<!-- profile:end -->")
HEADING = "## Where the time goes: one PPO and one DQN CartPole run"
# name -> (label, flagfile, env-step budget of --quick)
CONFIGS = {
    "ppo": ("PPO CartPole", "experiments/configs/cartpole_ppo.cfg", 4096),
    "dqn": ("DQN CartPole", "experiments/configs/cartpole.cfg", 3072),
}
PACKAGES = ("tensorflow", "tf-agents", "tf-keras", "gymnasium", "numpy")
IMPORT_PACKAGES = ("tensorflow", "tf_agents", "gymnasium", "tfa_suite")
CONTENDED_LOAD = 0.5  # 1-minute load average above which the figures are flagged
# What experiments/train.py imports before it trains (tfa_suite.run.train: in train_main).
IMPORTS = (
    "from absl import app\n"
    "import tfa_suite\n"
    "from tfa_suite.startup import import_tensorflow\n"
    "import_tensorflow()\n"
    "from tfa_suite import flags\n"
    "from tfa_suite.cli import run_main, train_main\n"
    "from tfa_suite.run.train import train\n"
)
MEASURED = (
    "Each run is a fresh process doing `experiments/train.py`'s work (imports, "
    "`define_flags` and the flagfile, `train(config)` with `--video_episodes=0` in a fresh "
    "temp dir), timed from just before `Popen`. Start-up rows are the gaps between marks "
    "the process takes; the rest are wrapped calls, each counted once (a call inside another "
    "is taken out of the outer one). Each compiled function is traced explicitly just "
    "before its first use: `collect_train` with `get_concrete_function`, then one call of 0 "
    "iterations (its graph optimization and first-call set-up); the in-graph screen's "
    "`_play` with `get_concrete_function`; the greedy action with one call on one "
    "observation. The compiled calls' split is an estimate: after the run the same process "
    "times, interleaved, `loop.run`, the collection alone and the train step alone on a "
    "fixed batch (bench_bound.py's (e), (d) and (a)); the shares of a loop env step that "
    "collection (loop rate / collection rate) and training (loop rate x grad steps per env "
    "step / train-step rate) take are applied to the run's seconds in its compiled calls; "
    "the remainder is replay sampling, advantages, minibatch gathers and whatever the two "
    "miss. **rest**: "
    "the training window's time outside every wrapped call (the session's Python, progress "
    "lines, counters). **s to solve** = the end of the solving evaluation (or, unsolved, the "
    "end of training) - `Popen`; as `make bench` counts it, the process's exit minus its "
    "post-solve tail (the post-run timings here excluded). Imports per package: `python -X "
    "importtime` of train.py's imports in a separate process (cumulative: the package's first "
    "import with all it loads then; own: its modules' self time), medians over runs; "
    "importtime's bookkeeping makes them slower than the in-run figure."
)


# --- pure helpers: import times, the stopwatch, the stages (no TensorFlow) ----------------


def parse_importtime(text: str) -> list[tuple[str, int, float, float]]:
    """`-X importtime` lines as (module, depth, self s, cumulative s), in printed order
    (a module's line follows those of the modules it imported)."""
    entries = []
    for line in text.splitlines():
        if not line.startswith("import time:") or "[us]" in line:
            continue
        own, cumulative, name = line.removeprefix("import time:").split("|", 2)
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
        entries.append((name.strip(), depth, int(own) / 1e6, int(cumulative) / 1e6))
    return entries


def _in_package(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def import_summary(
    entries: Sequence[tuple[str, int, float, float]], packages: Sequence[str]
) -> dict[str, Any]:
    """Total import seconds (the top-level imports' cumulative) and per package: the
    cumulative of its outermost imports (with all they loaded first), its own modules' self
    seconds, and which of the other `packages` were first imported inside it (their
    cumulative is then part of its own)."""
    summary: dict[str, dict[str, Any]] = {
        p: {"cumulative_s": 0.0, "own_s": 0.0, "includes": []} for p in packages
    }
    stack: list[tuple[int, str]] = []  # the ancestors of the entry being read, outermost first
    for name, depth, own, cumulative in reversed(entries):  # parents before children
        while stack and stack[-1][0] >= depth:
            stack.pop()
        for p in (p for p in packages if _in_package(name, p)):
            summary[p]["own_s"] += own
            if not any(_in_package(a, p) for _, a in stack):
                summary[p]["cumulative_s"] += cumulative
            for outer in packages:  # a listed package first imported inside another
                inside = name == p != outer and any(_in_package(a, outer) for _, a in stack)
                if inside and p not in summary[outer]["includes"]:
                    summary[outer]["includes"].append(p)
        stack.append((depth, name))
    total = sum(cumulative for _, depth, _, cumulative in entries if depth == 0)
    return {"total_s": total, "packages": summary}


class Stopwatch:
    """Named segments, possibly nested: per name the seconds inside it (`total`), the same
    without the segments nested in it (`own`), the count and the first one's seconds.
    After `close()` nothing more is recorded."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.own: dict[str, float] = {}
        self.total: dict[str, float] = {}
        self.count: dict[str, int] = {}
        self.first: dict[str, float] = {}
        self._children: list[float] = []
        self.closed = False

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        if self.closed:
            yield
            return
        start = self.clock()
        self._children.append(0.0)
        try:
            yield
        finally:
            elapsed = self.clock() - start
            nested = self._children.pop()
            if self._children:
                self._children[-1] += elapsed
            self.own[name] = self.own.get(name, 0.0) + elapsed - nested
            self.total[name] = self.total.get(name, 0.0) + elapsed
            self.count[name] = self.count.get(name, 0) + 1
            self.first.setdefault(name, elapsed)

    def close(self) -> None:
        self.closed = True

    def to_json(self) -> dict[str, Any]:
        return {"own": self.own, "total": self.total, "count": self.count, "first": self.first}


# (key, label) of the wrapped calls, in the table's order
SEGMENTS = (
    ("trace_loop", "trace: the collect-train function (`collect_train`, agent train step inside)"),
    ("first_call_loop", "its first call, 0 iterations (graph optimization, set-up)"),
    ("trace_screen", "trace: the in-graph evaluation screen"),
    ("trace_greedy", "trace: the greedy action of the gymnasium evaluation"),
    ("prefill", "initial collection before training (`prefill`)"),
    ("loop", "compiled collect-train calls (`loop.run`)"),
    ("screen", "in-graph evaluation screens"),
    ("gymnasium", "gymnasium evaluations (the confirmation)"),
    ("evaluation", "the evaluations' own bookkeeping (summaries, metrics row, progress line)"),
    ("rows", "metrics rows"),
    ("checkpoints", "checkpoints"),
)
START_UP = (
    ("interpreter", "interpreter start (`Popen` -> the script's first line)", None, "script"),
    ("import_tensorflow", "imports: TensorFlow (`import_tensorflow`)", "script", "tensorflow"),
    ("import_suite", "imports: tfa_suite and what it loads (tf_agents, gymnasium)", "tensorflow",
     "imports"),
    ("config", "flag parsing and config", "imports", "config"),
    ("before_build", "`train()` before the build (validation, env spec, seeding)", "config",
     "build_start"),
    ("build", "build: env, agent, loop, evaluator", "build_start", "build_end"),
    ("session", "session set-up: run dir, checkpoint, metrics file, summaries", "build_end",
     "training"),
)  # fmt: skip


def loop_split(data: Mapping[str, Any]) -> dict[str, float | None]:
    """The compiled calls' seconds as collection + train steps (estimates) + the rest.

    After the run the worker times, interleaved, the loop itself (`loop`, env steps/s), its
    collection alone (`collect`, env steps/s) and the train step alone (`train`, grad
    steps/s). Per env step of the loop, collection takes loop / collect of its time and
    training loop x (grad steps per env step) / train; those shares of the run's own
    seconds in the compiled calls are the estimates, so a machine slower or faster after
    the run than during it does not skew them.
    """
    own, counters, split = data["stopwatch"]["own"], data["counters"], data.get("split") or {}
    seconds, env_steps = own.get("loop", 0.0), counters["loop_env_steps"]
    loop, collect, train = (split.get(k) for k in ("loop", "collect", "train"))
    if not (loop and collect and train and env_steps):
        return {"collection": None, "train": None, "other": None}
    collection = seconds * loop / collect
    training = seconds * loop * (counters["loop_grad_steps"] / env_steps) / train
    return {"collection": collection, "train": training, "other": seconds - collection - training}


def stages(data: Mapping[str, Any], popen: float, exit_: float) -> dict[str, Any]:
    """A worker's marks and stopwatch, with the harness's `Popen` and exit instants, as
    seconds per stage; the stages add up to `to_end` (Popen -> solve or training end)."""
    marks, own = data["marks"], data["stopwatch"]["own"]
    seconds: dict[str, float] = {}
    for key, _, start, end in START_UP:
        seconds[key] = marks[end] - (popen if start is None else marks[start])
    for key, _ in SEGMENTS:
        seconds[key] = own.get(key, 0.0)
    window = marks["end"] - marks["training"]
    seconds["rest"] = window - sum(own.values())
    result = data["result"]
    # As `make bench` counts it: the process's exit minus its post-solve tail, where the
    # process here ends when train() returns (the post-run timings are taken out).
    process = marks["train_returned"] - popen + (exit_ - marks["done"])
    solved_at = result.get("solved_at_seconds")
    bench = None if solved_at is None else process - (result["wall_seconds"] - solved_at)
    return {
        "seconds": seconds,
        "to_end": marks["end"] - popen,
        "ended_by": marks["end_kind"],
        "bench_process_seconds": process,
        "bench_to_solve_seconds": bench,
        "loop_split": loop_split(data),
    }


def fmt(value: float | None, spec: str = ".2f") -> str:
    return "–" if value is None or not math.isfinite(value) else format(value, spec)


def stage_rows(run: Mapping[str, Any]) -> dict[str, str]:
    """One run's column of the stage table, by row key."""
    s, counters, watch = run["stages"]["seconds"], run["counters"], run["stopwatch"]
    count = watch["count"]
    cells = {key: fmt(s[key]) for key in s}
    for key, _ in SEGMENTS:
        if not count.get(key):
            cells[key] = "–"  # it did not happen in this run
    for key, what in (("screen", "screen"), ("gymnasium", "evaluation"), ("rows", "row"),
                      ("checkpoints", "checkpoint")):  # fmt: skip
        if n := count.get(key):
            cells[key] += f" ({n} {what}{'s' if n > 1 else ''})"
    if count.get("screen", 0) > 1:
        cells["screen"] = cells["screen"][:-1] + f", the first {fmt(watch['first']['screen'])})"
    if calls := count.get("loop"):
        iterations = counters["loop_iterations"]
        per = 1e3 * s["loop"] / max(iterations, 1)
        plural = "s" if calls > 1 else ""
        cells["loop"] += f" ({calls} call{plural}, {iterations} iterations, {per:.0f} ms each)"
    if counters.get("prefill_env_steps"):
        cells["prefill"] += f" ({counters['prefill_env_steps']:,} env steps)"
    split = run["stages"]["loop_split"]
    for key in ("collection", "train", "other"):
        cells[f"loop_{key}"] = fmt(split[key])
    return cells


def outcome_rows(run: Mapping[str, Any]) -> dict[str, str]:
    st, end = run["stages"], run["end_counters"]
    solved = st["ended_by"] == "solved"
    bench = st["bench_to_solve_seconds"]
    return {
        "to_end": f"**{fmt(st['to_end'])}**" + ("" if solved else " (unsolved: training's end)"),
        "bench": fmt(bench) if solved else "–",
        "steps": f"{end['env_steps']:,} / {end['grad_steps']:,}",
        "rate": fmt(end["env_steps"] / st["to_end"], ",.0f"),
        "stall": fmt(run.get("cpu_stall_percent"), ".0f"),
    }


ROWS = (
    *((key, label) for key, label, _, _ in START_UP),
    *SEGMENTS[:6],
    ("loop_collection", "— of which collection (est.)"),
    ("loop_train", "— of which train steps (est.)"),
    ("loop_other", "— of which the rest of the call (sampling, advantages, gathers)"),
    *SEGMENTS[6:],
    ("rest", "rest: the session's Python between calls"),
)
OUTCOME = (
    ("to_end", "**s to solve** (`Popen` -> end of the solving evaluation)"),
    ("bench", "s to solve as `make bench` counts it (exit - post-solve tail)"),
    ("steps", "env steps / grad steps then"),
    ("rate", "env steps / s to solve"),
    ("stall", "CPU stall % of the process (Linux PSI; high: a contended machine)"),
)


def import_rows(imports: Mapping[str, Any]) -> list[str]:
    lines = [
        "| imports, `python -X importtime` (median of "
        f"{imports['runs']}) | first import, cumulative s | own modules, s |",
        "| --- | ---: | ---: |",
    ]
    for p, v in imports["packages"].items():
        name = p + (f" (with {', '.join(v['includes'])})" if v.get("includes") else "")
        lines.append(f"| {name} | {fmt(v['cumulative_s'])} | {fmt(v['own_s'])} |")
    lines.append(f"| all of train.py's imports | {fmt(imports['total_s'])} | |")
    lines.append(f"| that process, `Popen` to exit | {fmt(imports['process_s'])} | |")
    return lines


def markdown(report: Mapping[str, Any], machine_sentence: Callable[[Any], str]) -> str:
    runs = report["runs"]
    head = ["stage, s", *(f"{r['label']} (`{Path(r['flagfile']).name}`)" for r in runs.values())]
    lines = [
        f"Command: `make bench-profile` ({report['mode']}), seed {report['seed']}. "
        f"{machine_sentence(report)}",
        "",
        *([f"**Contended:** {report['warning']}", ""] if report["warning"] else []),
        "| " + " | ".join(head) + " |",
        "| --- |" + " ---: |" * len(runs),
    ]
    columns = [stage_rows(r) | outcome_rows(r) for r in runs.values()]
    for key, label in (*ROWS, *OUTCOME):
        lines.append("| " + " | ".join([label, *(c.get(key, "–") for c in columns)]) + " |")
    lines += ["", *import_rows(report["imports"])]
    return "\n".join([*lines, "", "What is measured: " + report["measured"]])


# --- the worker: one run, instrumented from outside --------------------------------------


class Probe:
    """Wraps what the session calls, in this process only, and keeps the marks and counts."""

    def __init__(self, marks: dict[str, Any], stop_at_threshold: bool):
        self.marks = marks
        self.watch = Stopwatch()
        self.stop_at_threshold = stop_at_threshold
        self.parts: Any = None
        self.loop_traced = False
        self.greedy_traced = False
        self.counters = {"loop_iterations": 0, "loop_env_steps": 0, "loop_grad_steps": 0,
                         "prefill_env_steps": 0}  # fmt: skip
        self.end_counters: dict[str, int] = {}

    def now(self, mark: str) -> None:
        self.marks.setdefault(mark, time.monotonic())

    def steps(self) -> tuple[int, int]:
        loop, agent = self.parts.loop, self.parts.built.agent
        return int(loop.env_steps.result()), int(agent.train_step_counter.numpy())

    def end(self, kind: str) -> None:
        if "end" in self.marks:
            return
        self.now("end")
        self.marks["end_kind"] = kind
        self.watch.close()
        env_steps, grad_steps = self.steps()
        self.end_counters = {"env_steps": env_steps, "grad_steps": grad_steps}

    def install(self) -> None:
        """Wraps the module-level names and methods the session reaches (before train())."""
        from tfa_suite.run import evaluation, session
        from tfa_suite.run import train as train_module
        from tfa_suite.run.checkpoints import RunCheckpoint
        from tfa_suite.run.rows import RowWriter

        build, episodes, train = train_module.build, evaluation.run_episodes, session.Session._train
        evaluate = evaluation.RunEvaluation.__call__
        watch = self.watch

        def timed_build(config: Any) -> Any:
            self.now("build_start")
            parts = build(config)
            self.now("build_end")
            self.instrument(parts)
            return parts

        def timed_episodes(action_fn: Any, *args: Any, **kwargs: Any) -> Any:
            if not self.greedy_traced:
                self.greedy_traced = True
                with watch("trace_greedy"):
                    action_fn(self.observation())
            with watch("gymnasium"):
                return episodes(action_fn, *args, **kwargs)

        def timed_evaluation(evaluation_: Any, step: int, train_steps: int) -> bool:
            with watch("evaluation"):
                solved = evaluate(evaluation_, step, train_steps)
            if solved and self.stop_at_threshold:
                self.end("solved")
            return solved

        def timed_train(session_: Any, *args: Any, **kwargs: Any) -> int:
            steps = train(session_, *args, **kwargs)
            self.end("budget")  # training's end, before the last checkpoint and the export
            return steps

        train_module.build, evaluation.run_episodes = timed_build, timed_episodes
        session.Session._train, evaluation.RunEvaluation.__call__ = timed_train, timed_evaluation
        RunCheckpoint.save = self.wrapped("checkpoints", RunCheckpoint.save)
        RowWriter.write = self.wrapped("rows", RowWriter.write)

    def wrapped(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            with self.watch(name):
                return fn(*args, **kwargs)

        return call

    def observation(self) -> Any:
        import numpy as np

        spec = self.parts.tf_env.time_step_spec().observation
        return np.zeros([1, *spec.shape], spec.dtype.as_numpy_dtype)

    def instrument(self, parts: Any) -> None:
        """Wraps the loop's entry points and the in-graph evaluator of a run's parts."""
        self.parts = parts
        loop = parts.loop
        prefill, compile_, run = loop.prefill, loop.compile, loop.run

        def timed_prefill(num_env_steps: int) -> int:
            self.now("training")
            self.trace_loop()
            before = self.steps()[0]
            with self.watch("prefill"):
                out = prefill(num_env_steps)
            self.counters["prefill_env_steps"] += self.steps()[0] - before
            return out

        def timed_compile() -> float | None:
            self.now("training")
            if self.loop_traced:
                return compile_()
            with self.watch("trace_loop"):
                traced = compile_()
            self.trace_loop()  # the first call, and the trace if compile() did not trace
            return traced

        def timed_run(iterations: int) -> float:
            if self.watch.closed:  # after the run: the split's own timings
                return run(iterations)
            self.now("training")
            self.trace_loop()
            env_before, grad_before = self.steps()
            with self.watch("loop"):
                loss = run(iterations)
            env_after, grad_after = self.steps()
            self.counters["loop_iterations"] += iterations
            self.counters["loop_env_steps"] += env_after - env_before
            self.counters["loop_grad_steps"] += grad_after - grad_before
            return loss

        loop.prefill, loop.compile, loop.run = timed_prefill, timed_compile, timed_run
        if parts.graph_evaluator is not None:
            parts.graph_evaluator = TimedEvaluator(parts.graph_evaluator, self.watch)

    def trace_loop(self) -> None:
        """Traces the loop's compiled function if nothing has, then calls it for 0 iterations."""
        import inspect

        import tensorflow as tf

        fn = getattr(self.parts.loop, "collect_train", None)
        if self.loop_traced or fn is None:
            return
        self.loop_traced = True
        arity = len(inspect.signature(fn.python_function).parameters)
        if fn.experimental_get_tracing_count() == 0:
            with self.watch("trace_loop"):
                fn.get_concrete_function(*[tf.TensorSpec([], tf.int64)] * arity)
        with self.watch("first_call_loop"):
            fn(*[tf.constant(0, tf.int64)] * arity)

    def tracing_counts(self) -> dict[str, int]:
        counts = {"collect_train": self.parts.loop.collect_train.experimental_get_tracing_count()}
        if isinstance(self.parts.graph_evaluator, TimedEvaluator):
            counts["screen"] = self.parts.graph_evaluator.tracing_count()
        return counts


class TimedEvaluator:
    """The in-graph evaluator, traced explicitly at its first call and timed."""

    def __init__(self, evaluator: Any, watch: Stopwatch):
        self._evaluator, self._watch, self._traced = evaluator, watch, False

    def __call__(self) -> Any:
        if not self._traced:
            self._traced = True
            with self._watch("trace_screen"):
                self._evaluator._play.get_concrete_function()
        with self._watch("screen"):
            return self._evaluator()

    def tracing_count(self) -> int:
        return self._evaluator._play.experimental_get_tracing_count()


def worker(args: argparse.Namespace) -> None:
    """One run, as experiments/train.py runs it, with its stages timed; writes --worker_out."""
    marks: dict[str, Any] = {"script": time.monotonic()}
    import tfa_suite  # noqa: F401  (selects Keras 2 before TensorFlow loads)
    from tfa_suite.startup import import_tensorflow

    import_tensorflow()
    marks["tensorflow"] = time.monotonic()
    from absl import flags as absl_flags

    from tfa_suite import flags as tfa_flags
    from tfa_suite.cli import quiet_library_logs
    from tfa_suite.run import train as train_module

    marks["imports"] = time.monotonic()
    flag_values = absl_flags.FlagValues()
    tfa_flags.define_flags(flag_values)
    argv = [f"--flagfile={args.flagfile}", f"--seed={args.seed}", f"--root_dir={args.root_dir}",
            "--video_episodes=0"]  # fmt: skip
    flag_values(["train.py", *argv, *([f"--num_env_steps={args.budget}"] if args.budget else [])])
    quiet_library_logs()
    config = tfa_flags.config_from_flags(flag_values)
    marks["config"] = time.monotonic()
    probe = Probe(marks, config.run.stop_at_threshold)
    probe.install()
    result = train_module.train(config)
    marks["train_returned"] = time.monotonic()
    probe.end("budget")  # a no-op unless the run stopped on a signal
    data = {
        "marks": marks, "stopwatch": probe.watch.to_json(), "counters": probe.counters,
        "end_counters": probe.end_counters, "result": result.to_json(),
        "tracing_counts": probe.tracing_counts(), "split": split_rates(probe.parts, args),
        "agent": config.run.agent, "num_envs": config.run.num_envs,
    }  # fmt: skip
    data["marks"]["done"] = time.monotonic()
    Path(args.worker_out).write_text(json.dumps(data, indent=2, default=float) + "\n")


def split_rates(parts: Any, args: argparse.Namespace) -> dict[str, float]:
    """After the run, interleaved: the loop's and its collection's env steps/s and the train
    step's grad steps/s on a fixed batch (medians)."""
    import bench_bound

    try:
        steps = {
            "loop": bench_bound.loop_run(parts),
            "collect": bench_bound.collect_only(parts),
            "train": bench_bound.train_only(parts, bench_bound.fixed_batch(parts)),
        }
        measured = bench_bound.measure_all(steps, args.repeats, args.seconds)
    except Exception as e:  # the run's figures stand without the split
        print(f"the split's timings failed: {type(e).__name__}: {e}", flush=True)
        return {}
    return {name: m["median"] for name, m in measured.items()}


# --- the harness ------------------------------------------------------------------------


def measure_imports(runs: int) -> dict[str, Any]:
    """`python -X importtime` of train.py's imports, `runs` times: medians per figure."""
    samples = []
    for _ in range(runs):
        start = time.monotonic()
        proc = subprocess.run([sys.executable, "-X", "importtime", "-c", IMPORTS], cwd=REPO,
                              capture_output=True, text=True, timeout=600)  # fmt: skip
        process = time.monotonic() - start
        if proc.returncode != 0:
            raise RuntimeError(f"-X importtime failed: {proc.stderr.strip().splitlines()[-1:]}")
        samples.append({**import_summary(parse_importtime(proc.stderr), IMPORT_PACKAGES),
                        "process_s": process})  # fmt: skip
    packages = {
        p: {k: statistics.median(s["packages"][p][k] for s in samples) for k in ("cumulative_s",
            "own_s")} | {"includes": samples[0]["packages"][p]["includes"]}
        for p in IMPORT_PACKAGES
    }  # fmt: skip
    return {
        "runs": runs,
        "total_s": statistics.median(s["total_s"] for s in samples),
        "process_s": statistics.median(s["process_s"] for s in samples),
        "packages": packages,
        "samples": samples,
    }


def profile_one(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """One run in a fresh worker process and temp dir, timed from just before `Popen`."""
    from solve_bench import cpu_stall_seconds

    label, flagfile, quick_budget = CONFIGS[name]
    tmp = Path(tempfile.mkdtemp(prefix=f"profile-{name}-"))
    try:
        out, log_path = tmp / "worker.json", tmp / "log.txt"
        argv = [sys.executable, str(Path(__file__).resolve()), "--worker", f"--flagfile={flagfile}",
                f"--seed={args.seed}", f"--root_dir={tmp / 'run'}", f"--worker_out={out}",
                f"--seconds={args.seconds}", f"--repeats={args.repeats}",
                f"--budget={quick_budget if args.quick else 0}"]  # fmt: skip
        print(f"running {label} ({flagfile}, seed {args.seed}) ...", flush=True)
        with open(log_path, "w") as log:
            stall_before, popen = cpu_stall_seconds(), time.monotonic()
            proc = subprocess.run(argv, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                  timeout=args.timeout)  # fmt: skip
            exit_, stall_after = time.monotonic(), cpu_stall_seconds()
        log_text = log_path.read_text(errors="replace")
        if proc.returncode != 0 or not out.exists():
            tail = "\n    ".join(log_text.splitlines()[-15:])
            raise RuntimeError(f"{label} failed (exit {proc.returncode}):\n    {tail}")
        data = json.loads(out.read_text())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    run = {"label": label, "flagfile": flagfile, **data, "stages": stages(data, popen, exit_)}
    stalled = None if stall_before is None or stall_after is None else stall_after - stall_before
    run["cpu_stall_percent"] = None if stalled is None else 100 * stalled / (exit_ - popen)
    print(f"  {run['stages']['ended_by']} after {run['stages']['to_end']:.1f} s "
          f"({run['end_counters']['env_steps']:,} env steps)", flush=True)  # fmt: skip
    return run


def make_parser() -> argparse.ArgumentParser:
    from bench_bound import parse_configs  # the same two configs, by the same names
    from solve_bench import OneLineParser

    parser = OneLineParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--quick", action="store_true", help="short env-step budgets (unsolved), 1 import run, "
        "1 repeat of 0.5 s for the split")  # fmt: skip
    add("--configs", type=parse_configs, default=list(CONFIGS), help="ppo,dqn")
    add("--seed", type=int, default=0)
    add("--import_runs", type=int, default=3, help="`-X importtime` processes (3; quick 1)")
    add("--repeats", type=int, default=3, help="timed runs per split figure (3; quick 1)")
    add("--seconds", type=float, default=None, help="per split timing (2; quick 0.5)")
    add("--timeout", type=float, default=900.0, help="seconds per run")
    add("--out", type=Path, default=RESULTS, help="JSON (benchmarks/results/profile.json)")
    add("--doc", type=Path, default=REPO / "docs" / "benchmarks.md", help="markdown")
    for hidden in ("--flagfile", "--root_dir", "--worker_out"):
        add(hidden, help=argparse.SUPPRESS)
    add("--worker", action="store_true", help=argparse.SUPPRESS)
    add("--budget", type=int, default=0, help=argparse.SUPPRESS)
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.quick:
        args.import_runs, args.repeats = 1, 1
    args.seconds = args.seconds or (0.5 if args.quick else 2.0)
    if args.import_runs < 1 or args.repeats < 1 or not args.seconds > 0 or not args.timeout > 0:
        parser.error("--import_runs and --repeats must be >= 1, --seconds and --timeout > 0")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    from solve_bench import machine_info, machine_sentence, shown, write_doc

    load_before = os.getloadavg()[0]
    warning = None
    if load_before > CONTENDED_LOAD:
        warning = (
            f"1-minute load average {load_before:.2f} > {CONTENDED_LOAD} at start: other "
            "processes competed for the CPU, so these figures are high and noisy"
        )
        print(f"WARNING: {warning}", flush=True)
    print(f"python -X importtime of train.py's imports, {args.import_runs}x ...", flush=True)
    try:
        imports = measure_imports(args.import_runs)
        runs = {name: profile_one(name, args) for name in args.configs}
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        sys.exit(f"error: {e}")
    report = {
        "benchmark": "where the time goes in one run, process start to solve",
        "mode": "quick: short budgets, unsolved" if args.quick else "full: each run to solve",
        "seed": args.seed, "finished": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average": {"before": load_before, "after": os.getloadavg()[0]},
        "warning": warning, "machine": machine_info(PACKAGES), "measured": MEASURED,
        "imports": imports, "runs": runs,
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    write_doc(args.doc, *MARKERS, text := markdown(report, machine_sentence), heading=HEADING)
    print(f"\nwrote {shown(args.out.resolve())} and {shown(args.doc.resolve())}\n\n{text}")
    if warning:
        print(f"\nWARNING: {warning}")


if __name__ == "__main__":
    main()
