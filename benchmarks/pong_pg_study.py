"""The Pong policy-gradient screening study: optimizer and learning-rate variants of
pong_pg.cfg, every seed trained for the same budget, compared on their learning curves.

    python benchmarks/pong_pg_study.py                    # the missing runs, then the report
    python benchmarks/pong_pg_study.py --report_only      # the report from the runs on disk
    make study-pong-pg ARGS=...                           # the same

Each run is `experiments/train.py --flagfile=experiments/configs/pong_pg.cfg --seed=S
--num_env_steps=N <the variant's flags> --root_dir=<out_dir>/<variant>-seed<S>`, one at a
time and seed-major (every variant's seed 0 before any seed 1), so a study stopped partway
has still compared the variants on the same seeds. SIGTERM or SIGINT is passed on to the
run, which checkpoints; the same command resumes it. Each finished run's export then plays
10 greedy games in a fresh process (`experiments/evaluate.py`, game seeds from 5,000,000,
never used in training).

The report (between the markers in docs/on-policy.md, with the runs' figures in
benchmarks/results/pong_pg_screen.json and every curve in docs/pong_pg/screen.png) gives per
run: env steps and training wall time, the first env step where the training return (the
mean of the last 10 finished games of the sampled policy) is >= 0, the last training return,
and the 10-game greedy score; per variant, how many seeds reached 0 and the medians. Runs
made beside other work (`--shared_machine`, remembered in <run dir>.study.json beside it) have their
wall times labelled "(shared)".

The report also keeps the finished runs of the last report (--record, the JSON above) whose
run dirs are not on this machine, marked as such, and the study does not train them again
unless asked (--retrain_recorded): a study spans machines and sessions, and a 2M-step run
takes half an hour or more.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from results_table import UNSEEN_SEED as EVAL_SEED  # its unseen episodes
from solve_bench import REPO, OneLineParser, fail, md_row, parse_seeds, write_doc

sys.path.insert(0, str(REPO))
from tfa_suite.run.reporting import elapsed_over_segments, read_metrics  # noqa: E402

CONFIG = "experiments/configs/pong_pg.cfg"
# name -> the flags that make the variant from pong_pg.cfg. rmsprop1e-4 is pg-pong.py's own
# setting (and pong_pg.cfg's first default), the control.
VARIANTS: dict[str, tuple[str, ...]] = {
    "adam1e-3": ("--optimizer=adam", "--learning_rate=1e-3"),
    "adam3e-4": ("--optimizer=adam", "--learning_rate=3e-4"),
    "rmsprop1e-3": ("--optimizer=rmsprop", "--learning_rate=1e-3"),
    "rmsprop1e-4": ("--optimizer=rmsprop", "--learning_rate=1e-4"),
}
EVAL_GAMES = 10
EVAL_FILE = "eval_greedy_10_games.json"


def study_file(root: Path) -> Path:
    """What the study remembers of a run, beside it (the run dir must hold only the run)."""
    return root.parent / f"{root.name}.study.json"


def shared_machine(root: Path) -> bool:
    """The run was (partly) trained beside other work, as its study file remembers."""
    study = study_file(root)
    return study.is_file() and json.loads(study.read_text()).get("shared_machine", False)


def log_file(root: Path) -> Path:
    """Where the run's training and evaluation output goes, beside it."""
    return root.parent / f"{root.name}.log"


def stored_result(root: Path) -> dict[str, Any] | None:
    """The run's result.json if the run reached one of its ends and exported (not written
    on a signal), else None. train.py's own rule, `tfa_suite.run.outputs.finished_result`,
    needs TensorFlow; these scripts stay free of it."""
    path = root / "result.json"
    if not path.is_file():
        return None
    result = json.loads(path.read_text())
    return result if result.get("stopped_by_signal") is None else None


def publish(json_out: Path, figures: dict[str, Any], doc: Path, markers: tuple[str, str],
            heading: str, text: str) -> None:  # fmt: skip
    """Writes a report: its figures as JSON, its text between the doc's markers (and to
    the terminal)."""
    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps(figures, indent=1) + "\n")
    write_doc(doc, *markers, text, heading=heading)
    print(text)


DOC = REPO / "docs" / "on-policy.md"
MARKERS = ("<!-- pong-pg-screen:start -->", "<!-- pong-pg-screen:end -->")
PLOT = REPO / "docs" / "pong_pg" / "screen.png"
JSON_OUT = REPO / "benchmarks" / "results" / "pong_pg_screen.json"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = OneLineParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated names")
    p.add_argument("--seeds", type=parse_seeds, default=[0, 1, 2])
    p.add_argument("--num_env_steps", type=int, default=2_000_000, help="budget of every run")
    p.add_argument("--out_dir", default="runs/pong_pg_screen")
    p.add_argument("--report_only", action="store_true", help="train nothing; report")
    p.add_argument(
        "--shared_machine", action="store_true", help="label the runs this call trains as shared"
    )
    p.add_argument(
        "--record", default=str(JSON_OUT),
        help="an earlier report's JSON whose finished runs count as done ('' for none)",
    )  # fmt: skip
    p.add_argument(
        "--retrain_recorded", action="store_true", help="train the recorded runs again too"
    )
    args = p.parse_args(argv)
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown or not args.variants:
        named = ", ".join(unknown) or "(none given)"
        fail(f"--variants: unknown {named}; known: {', '.join(VARIANTS)}")
    if args.num_env_steps < 1:
        fail("--num_env_steps must be >= 1")
    out = Path(args.out_dir)
    if out.exists() and not out.is_dir():
        fail(f"--out_dir {out} is a file, not a directory")
    args.record = Path(args.record) if args.record else None
    if args.record is not None and args.record.exists() and not args.record.is_file():
        fail(f"--record {args.record} is not a file")
    return args


def recorded_runs(record: Path | None, budget: int) -> dict[tuple[str, int], dict[str, Any]]:
    """The finished runs of an earlier report (its JSON) by (variant, seed), each marked
    "recorded": their run dirs may be gone (another machine, an earlier session), their
    figures are not. Only a report of the same budget counts; a run it shows unfinished
    cannot be resumed from the record, so it is not kept."""
    if record is None or not record.is_file():
        return {}
    try:
        figures = json.loads(record.read_text())
        runs = figures["runs"] if figures.get("num_env_steps") == budget else []
        return {(r["variant"], r["seed"]): {**r, "recorded": True} for r in runs if r["finished"]}
    except (ValueError, KeyError, TypeError) as e:
        fail(f"--record {record} is not a screening report ({type(e).__name__}: {e})")


def run_dir(out: Path, variant: str, seed: int) -> Path:
    return out / f"{variant}-seed{seed}"


def seeds_on_disk(out: Path) -> set[int]:
    """The seeds of the run dirs under `out`, named as `run_dir` names them."""
    return {
        int(suffix)
        for variant in VARIANTS
        for path in out.glob(f"{variant}-seed*")
        if path.is_dir() and (suffix := path.name.removeprefix(f"{variant}-seed")).isdigit()
    }


def finished(root: Path, steps: int) -> bool:
    """The run has its final export: its result.json is not a signal's and reaches `steps`."""
    result = stored_result(root)
    return result is not None and result["env_steps"] >= steps


def _last_line(log: Path, start: int = 0) -> str:
    """The newest nonblank line written to `log` past byte `start` ("" if none yet)."""
    with open(log, "rb") as f:
        f.seek(start)
        text = f.read().decode(errors="replace")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1].strip() if lines else ""


def run_logged(argv: list[str], log: Path, label: str) -> int:
    """Runs `argv` from the repo root into `log`, echoing its newest line each minute it has one;
    SIGTERM and SIGINT are passed on, so a training run checkpoints before it exits."""
    with open(log, "a") as f:
        start = f.tell()  # echo this process's lines, not an earlier one's last
        proc = subprocess.Popen(argv, cwd=REPO, stdout=f, stderr=subprocess.STDOUT)
    forward = lambda signum, _frame: proc.send_signal(signum)  # noqa: E731
    old = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    echoed = ""
    try:
        while True:
            try:
                return proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                newest = _last_line(log, start)
                if newest and newest != echoed:  # nothing new: no repeated line
                    print(f"  {label}: {newest}", flush=True)
                    echoed = newest
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def train_missing(args: argparse.Namespace, out: Path) -> None:
    plan = [(v, s) for s in args.seeds for v in args.variants]
    recorded = {} if args.retrain_recorded else recorded_runs(args.record, args.num_env_steps)
    for i, (variant, seed) in enumerate(plan, 1):
        root = run_dir(out, variant, seed)
        label = f"[{i}/{len(plan)}] {variant} seed {seed}"
        if (variant, seed) in recorded and not root.exists():
            print(f"{label}: recorded in {args.record}; not trained again", flush=True)
            continue
        if not finished(root, args.num_env_steps):
            print(f"{label}: training to {args.num_env_steps:,} env steps in {root}", flush=True)
            out.mkdir(parents=True, exist_ok=True)
            shared = args.shared_machine or shared_machine(root)
            study_file(root).write_text(
                json.dumps({"variant": variant, "shared_machine": shared}) + "\n"
            )
            argv = [
                sys.executable, "experiments/train.py", f"--flagfile={CONFIG}", f"--seed={seed}",
                f"--root_dir={root}", f"--num_env_steps={args.num_env_steps}", *VARIANTS[variant],
            ]  # fmt: skip
            start = time.monotonic()
            code = run_logged(argv, log_file(root), label)
            if code != 0 or not finished(root, args.num_env_steps):
                fail(f"{label} stopped (exit {code}); see {log_file(root)}, and "
                     "rerun the same command to resume it")  # fmt: skip
            print(f"{label}: done in {(time.monotonic() - start) / 60:.1f} min", flush=True)
        if not (root / EVAL_FILE).is_file():
            print(f"{label}: {EVAL_GAMES} greedy games of its export", flush=True)
            argv = [
                sys.executable, "experiments/evaluate.py", f"--policy_dir={root / 'policy'}",
                f"--episodes={EVAL_GAMES}", f"--seed={EVAL_SEED}", f"--json={root / EVAL_FILE}",
            ]  # fmt: skip
            if run_logged(argv, log_file(root), label) != 0:
                fail(f"{label}: evaluate.py failed; see {log_file(root)}")


def first_train_return_ge_0(timed: list[tuple[dict[str, float], float]]) -> dict[str, Any] | None:
    """The first metrics row whose training return (the sampled policy's last 10 games) is
    >= 0, with the run's seconds to it over every segment; None if none is."""
    for row, seconds in timed:
        if row.get("train_return", math.nan) >= 0:
            return {"env_steps": int(row["env_steps"]), "training_wall_seconds": round(seconds, 1)}
    return None


def run_figures(root: Path, variant: str, seed: int, budget: int) -> dict[str, Any] | None:
    """What the report shows of one run, from its files; None if it has no metrics yet."""
    if not (root / "metrics.csv").is_file():
        return None
    timed = list(elapsed_over_segments(read_metrics(str(root / "metrics.csv"))))
    curve = [(int(r["env_steps"]), r["train_return"], s) for r, s in timed
             if not math.isnan(r.get("train_return", math.nan))]  # fmt: skip
    if not curve:
        return None
    evaluation = None
    if (root / EVAL_FILE).is_file():
        record = json.loads((root / EVAL_FILE).read_text())
        evaluation = {"mean": record["mean"], "std": record["std"], "returns": record["returns"]}
    return {
        "variant": variant,
        "seed": seed,
        "finished": finished(root, budget),
        "env_steps": curve[-1][0],
        "training_wall_seconds": round(timed[-1][1], 1),
        "shared_machine": shared_machine(root),
        "first_train_return_ge_0": first_train_return_ge_0(timed),
        "last_train_return": curve[-1][1],
        "greedy_10_games": evaluation,
        "curve": [[steps, ret] for steps, ret, _ in curve],
    }


def _minutes(seconds: float, shared: bool) -> str:
    return f"{seconds / 60:.0f} min" + (" (shared)" if shared else "")


RUN_COLUMNS = ["variant", "seed", "env steps", "wall time", "first train return ≥ 0"]
RUN_COLUMNS += ["last train return", f"greedy ({EVAL_GAMES} games)"]
VARIANT_COLUMNS = ["variant", "seeds finished", "seeds with train return ≥ 0"]
VARIANT_COLUMNS += ["median env steps to it", "median greedy"]


def run_row(r: dict[str, Any]) -> str:
    first, greedy, shared = r["first_train_return_ge_0"], r["greedy_10_games"], r["shared_machine"]
    reached = "not reached"
    if first:
        reached = f"{first['env_steps']:,} ({_minutes(first['training_wall_seconds'], shared)})"
    steps = f"{r['env_steps']:,}" + ("" if r["finished"] else " (running or stopped)")
    steps += " †" if r.get("recorded") else ""
    score = f"{greedy['mean']:+.1f} ± {greedy['std']:.1f}" if greedy else "–"
    wall = _minutes(r["training_wall_seconds"], shared)
    return md_row(
        [r["variant"], r["seed"], steps, wall, reached, f"{r['last_train_return']:+.1f}", score]
    )


def variant_row(variant: str, mine: list[dict[str, Any]]) -> str:
    """The variant's summary over its finished runs: a run still training (or stopped
    partway) has no verdict yet, so it is in the run table only."""
    mine = [r for r in mine if r["finished"]]
    firsts = [
        r["first_train_return_ge_0"]["env_steps"] for r in mine if r["first_train_return_ge_0"]
    ]
    greedy = [r["greedy_10_games"]["mean"] for r in mine if r["greedy_10_games"]]
    # An unreached seed counts as beyond the budget, so the median is only a number when
    # more than half of the seeds reached 0.
    median_first = "–"
    if len(firsts) * 2 > len(mine):
        median_first = f"{statistics.median(firsts + [math.inf] * (len(mine) - len(firsts))):,.0f}"
    median_greedy = f"{statistics.median(greedy):+.1f}" if greedy else "–"
    return md_row([variant, len(mine), len(firsts), median_first, median_greedy])


def report_text(runs: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [
        "Screening runs (`python benchmarks/pong_pg_study.py`, `make study-pong-pg`): "
        f"pong_pg.cfg with each variant's optimizer flags, {args.num_env_steps:,} env steps "
        "per run. Training return: the mean of the last 10 finished games of the sampled "
        f"policy. Greedy: {EVAL_GAMES} games of the final export, game seeds from "
        f"{EVAL_SEED:,}.",
        "",
        md_row(RUN_COLUMNS),
        md_row(["---"] * len(RUN_COLUMNS)),
        *(run_row(r) for r in runs),
        "",
        md_row(VARIANT_COLUMNS),
        md_row(["---"] * len(VARIANT_COLUMNS)),
    ]
    for variant in VARIANTS:
        mine = [r for r in runs if r["variant"] == variant]
        if mine:
            lines.append(variant_row(variant, mine))
    lines += ["", f"All curves: [{PLOT.relative_to(REPO)}]({PLOT.relative_to(DOC.parent)})."]
    if any(r.get("recorded") for r in runs):
        note = "† Trained in an earlier session, its run dir not on the machine that wrote "
        note += f"this report: its figures are the record's ({args.record.name})."
        lines += ["", note]
    return "\n".join(lines)


def plot(runs: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5))
    colors = dict(zip(VARIANTS, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    styles = ["-", "--", ":", "-."]
    for r in runs:
        steps, returns = zip(*r["curve"])
        ax.plot([s / 1e6 for s in steps], returns, styles[r["seed"] % len(styles)],
                color=colors[r["variant"]], label=f"{r['variant']} seed {r['seed']}")  # fmt: skip
    ax.axhline(0, color="gray", linewidth=0.8)
    ax.set_xlabel("env steps (millions)")
    ax.set_ylabel("training return (last 10 games)")
    ax.set_title("Pong from pixels, REINFORCE (pong_pg.cfg): screening runs")
    ax.legend(fontsize=8, ncol=2)
    PLOT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(PLOT, dpi=100, bbox_inches="tight")
    plt.close(fig)


def study_runs(args: argparse.Namespace, out: Path) -> list[dict[str, Any]]:
    """The figures of every run of the study: those on disk, and the recorded ones whose
    run dirs are not (a run on disk, even one still training, replaces its record).
    --variants and --seeds choose what to train, not what to report: the report is also
    the record, and a call that trains one seed must not drop the others' rows from it."""
    recorded = recorded_runs(args.record, args.num_env_steps)
    seeds = sorted(set(args.seeds) | {seed for _, seed in recorded} | seeds_on_disk(out))
    return [
        figures
        for seed in seeds
        for variant in VARIANTS
        if (
            figures := run_figures(run_dir(out, variant, seed), variant, seed, args.num_env_steps)
            or recorded.get((variant, seed))
        )  # fmt: skip
    ]


def report(args: argparse.Namespace, out: Path) -> None:
    runs = study_runs(args, out)
    if not runs:
        fail(f"no screening runs with metrics under {out}, none recorded; "
             "run without --report_only first")  # fmt: skip
    figures = {"num_env_steps": args.num_env_steps, "runs": runs}
    heading = "## Pong: the screening study"
    publish(JSON_OUT, figures, DOC, MARKERS, heading, report_text(runs, args))
    plot(runs)
    written = ", ".join(str(p.relative_to(REPO)) for p in (JSON_OUT, PLOT, DOC))
    print(f"\nwrote {written}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    out = Path(args.out_dir).resolve()  # the runs' processes start in the repo root
    if not args.report_only:
        train_missing(args, out)
    report(args, out)


if __name__ == "__main__":
    main()
