"""Scale-out on Ray: collected env steps/s with N = 1, 2, 4, 8 actors, and the learner fed by them.

    make bench-scale            # or: python benchmarks/bench_scale.py [--quick]

One process, one local Ray. For CartPole-v1 on gymnasium (the python backend, as an
actor of a real simulator would run) and for the same CartPole with a fixed 5 ms per
step (`tfa_suite.envs.latency:DelayedCartPole-v1`, a stand-in for an expensive,
latency-bound simulator), and for each N, it builds the `--num_actors=N` learner of
`experiments/configs/cartpole.cfg` (4 envs per actor, 1,000 env steps per call) and
measures, after the actors are up and one round has passed:

1. **collection**: `--replay_ratio=0`, the learner only adds to its replay; env steps
   added per second over a window of whole rounds, and each actor's share;
2. **fed learner**: the config's own ratio (0.25 gradient steps per env step, batch 256),
   the learner's updates/s and the env steps/s it then takes in;

then, once per env, the learner's updates/s alone (its compiled train step, no actors).
It also records the bytes an actor sends per env step and the weights the learner sends
per version, for CartPole and for Pong (`pong_fast.cfg`, the Nature CNN), from the
arrays' dtypes and shapes.

It prints the table and (not with `--quick`) writes `benchmarks/results/scale.json` and
the tables between markers in docs/scale-out.md. Run it on an otherwise
idle machine: on 2 cores, other work changes every figure.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tfa_suite  # noqa: E402,F401  (selects Keras 2 before TensorFlow is imported)

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "results" / "scale.json"
DOC = REPO / "docs" / "scale-out.md"
CARTPOLE_CFG = REPO / "experiments" / "configs" / "cartpole.cfg"
PONG_CFG = REPO / "experiments" / "configs" / "pong_fast.cfg"
DELAY_MS = 5.0
ENVS = {
    "CartPole-v1": dict(env="CartPole-v1", env_kwargs=""),
    f"CartPole-v1 + {DELAY_MS:g} ms/step": dict(
        env="tfa_suite.envs.latency:DelayedCartPole-v1",
        env_kwargs=json.dumps({"delay_ms": DELAY_MS}),
    ),
}
ENVS_PER_ACTOR = 4
STEPS_PER_CALL = 1_000


def build(config_path: Path, **overrides: Any):  # noqa: ANN201
    from tfa_suite.flags import config_from_flagfile
    from tfa_suite.run.build import build as build_parts
    from tfa_suite.run.train import resolve_config

    return build_parts(resolve_config(config_from_flagfile(str(config_path), **overrides)))


def spec_bytes(spec) -> int:  # noqa: ANN001
    """Bytes of one item of a (nested) TensorSpec: one env step's trajectory fields."""
    import tensorflow as tf

    return sum(int(math.prod(s.shape)) * s.dtype.size for s in tf.nest.flatten(spec))


def sizes(parts) -> dict[str, int]:  # noqa: ANN001
    loop = parts.loop
    return dict(
        trajectory_bytes_per_env_step=spec_bytes(parts.agent.collect_data_spec),
        weight_bytes_per_version=sum(v.numpy().nbytes for v in loop.policy_variables),
        policy_parameters=sum(int(v.shape.num_elements()) for v in loop.policy_variables),
    )


def measure_sizes(root: str) -> dict[str, dict[str, int]]:
    out = {}
    cartpole = build(
        CARTPOLE_CFG, num_actors=1, backend="python", num_envs=ENVS_PER_ACTOR,
        root_dir=f"{root}/sizes-cartpole",
    )  # fmt: skip
    out["CartPole-v1 (cartpole.cfg)"] = sizes(cartpole)
    pong = build(
        PONG_CFG, num_actors=1, replay_capacity=2_000, initial_collect_steps=1_000,
        root_dir=f"{root}/sizes-pong",
    )  # fmt: skip
    out["Pong (pong_fast.cfg)"] = sizes(pong)
    return out


class PhaseClock:
    """Where the learner's time goes: waiting for actors, adding rounds to the replay (numpy
    concatenation included), training. Measured from outside the learner, by timing the
    three methods its `run` spends its time in, on this loop instance only."""

    def __init__(self, loop) -> None:  # noqa: ANN001
        self.seconds = dict(wait=0.0, add=0.0, train=0.0)
        loop.pool.wait = self._timed("wait", loop.pool.wait)
        loop._add_ready_rounds = self._timed("add", loop._add_ready_rounds)  # noqa: SLF001
        loop._train_chunk = self._timed("train", loop._train_chunk)  # noqa: SLF001

    def _timed(self, phase: str, method):  # noqa: ANN001, ANN202
        def timed(*args: Any) -> Any:
            start = time.monotonic()
            try:
                return method(*args)
            finally:
                self.seconds[phase] += time.monotonic() - start

        return timed


def window(loop, clock: PhaseClock, seconds: float, round_steps: int) -> dict[str, float]:  # noqa: ANN001
    """Whole rounds for at least `seconds`: env steps/s, updates/s and per-actor env steps/s."""
    steps0, updates0 = loop.env_step_count(), loop.train_step_count()
    split0 = dict(clock.seconds)
    loop.perf_values()  # resets the per-actor counters
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        loop.run(round_steps)
    elapsed = time.monotonic() - start
    perf = loop.perf_values()
    actors = [v for k, v in perf.items() if k.startswith("actor")]
    return dict(
        seconds=elapsed,
        env_steps_per_sec=(loop.env_step_count() - steps0) / elapsed,
        updates_per_sec=(loop.train_step_count() - updates0) / elapsed,
        actor_env_steps_per_sec=actors,
        # Fractions of the learner's wall time: waiting for actors, adding, training.
        learner_time=({k: (clock.seconds[k] - split0[k]) / elapsed for k in split0}),
    )


def learner_alone(loop, seconds: float) -> float:  # noqa: ANN001
    """Updates/s of the compiled train step with no actor running (after `close`)."""
    import tensorflow as tf

    chunk = tf.constant(32, tf.int64)
    loop.train_only(chunk)  # traced already; one more to settle
    count, start = 0, time.monotonic()
    while time.monotonic() - start < seconds:
        loop.train_only(chunk)
        count += 32
    return count / (time.monotonic() - start)


def measure(env_name: str, actors: int, seconds: float, root: str) -> dict[str, Any]:
    parts = build(
        CARTPOLE_CFG,
        **ENVS[env_name],
        backend="python",
        num_envs=ENVS_PER_ACTOR,
        num_actors=actors,
        actor_steps_per_call=STEPS_PER_CALL,
        num_env_steps=10**9,
        eval_interval=0,
        root_dir=f"{root}/{re.sub(r'[^A-Za-z0-9]+', '_', env_name)}-{actors}",
    )
    loop = parts.loop
    ratio = loop.ratio.ratio
    round_steps = actors * STEPS_PER_CALL
    row: dict[str, Any] = dict(env=env_name, actors=actors, fed_ratio=ratio)

    def set_ratio(value: float) -> None:  # from here on: pure collection, or fed at a ratio
        loop.ratio.restart(loop.env_step_count(), loop.train_step_count(), value)

    try:
        start = time.monotonic()
        set_ratio(0.0)
        loop.prefill(parts.config.loop.initial_collect_steps)
        row["startup_seconds"] = time.monotonic() - start
        clock = PhaseClock(loop)
        loop.run(round_steps)  # one round in, every actor busy
        row["collect"] = window(loop, clock, seconds, round_steps)
        set_ratio(ratio)
        loop.run(round_steps)  # traces the train step; the backlog is paid before it returns
        row["fed"] = window(loop, clock, seconds, round_steps)
        memory = [d["rss_bytes"] for d in loop.pool.describe() if d.get("rss_bytes")]
        row["actor_rss_bytes_max"] = max(memory) if memory else None
    finally:
        loop.close()
    if actors == 1:
        row["learner_alone_updates_per_sec"] = learner_alone(loop, min(seconds, 10.0))
    return row


def table(rows: list[dict[str, Any]]) -> str:
    base = {r["env"]: r["collect"]["env_steps_per_sec"] for r in rows if r["actors"] == 1}
    lines = [
        "| env | actors | collected env steps/s | ÷ N=1 | per actor (min–max) | "
        "fed learner: updates/s | fed learner: env steps/s | fed learner's time: "
        "train / add / wait |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        c, f = r["collect"], r["fed"]
        t = f["learner_time"]
        per = c["actor_env_steps_per_sec"]
        scale = c["env_steps_per_sec"] / base[r["env"]] if r["env"] in base else math.nan
        lines.append(
            f"| {r['env']} | {r['actors']} | {c['env_steps_per_sec']:,.0f} | {scale:.2f}× "
            f"({scale / r['actors']:.2f}·N) | {min(per):,.0f}–{max(per):,.0f} | "
            f"{f['updates_per_sec']:,.0f} | {f['env_steps_per_sec']:,.0f} | "
            f"{t['train']:.0%} / {t['add']:.0%} / {t['wait']:.0%} |"
        )
    alone = [
        f"{r['env']}: {r['learner_alone_updates_per_sec']:,.0f}"
        for r in rows
        if "learner_alone_updates_per_sec" in r
    ]
    memory = [r["actor_rss_bytes_max"] for r in rows if r.get("actor_rss_bytes_max")]
    starts = {r["actors"]: r["startup_seconds"] for r in rows}
    lines.append("")
    lines.append(
        "Learner alone (compiled train step, no actors), updates/s: "
        + "; ".join(alone)
        + f". Largest actor resident memory: {max(memory) / 2**20:,.0f} MiB. Start-up "
        "(local Ray already up; actors built and the first prefill round): "
        + ", ".join(f"{n} actors {s:.1f} s" for n, s in sorted(starts.items()))
        + "."
    )
    return "\n".join(lines)


def size_table(sizes_: dict[str, dict[str, int]]) -> str:
    lines = [
        "| config | trajectory bytes per env step | policy parameters | weight bytes per version |",
        "|---|---:|---:|---:|",
    ]
    for name, s in sizes_.items():
        lines.append(
            f"| {name} | {s['trajectory_bytes_per_env_step']:,} | {s['policy_parameters']:,} | "
            f"{s['weight_bytes_per_version']:,} |"
        )
    return "\n".join(lines)


def replace_between(path: Path, marker: str, text: str) -> None:
    content = path.read_text()
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    if start not in content or end not in content:
        raise SystemExit(f"{path} has no {start} ... {end} markers")
    head, rest = content.split(start, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{start}\n{text}\n{end}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 1, 2; 6 s windows; temp dir")
    parser.add_argument("--seconds", type=float, default=None, help="window per measurement")
    args = parser.parse_args()
    counts = (1, 2) if args.quick else (1, 2, 4, 8)
    seconds = args.seconds or (6.0 if args.quick else 25.0)

    from tfa_suite.cli import quiet_library_logs
    from tfa_suite.loops.ray.runtime import import_ray, init_ray

    quiet_library_logs()
    ray = import_ray()
    init_ray(num_cpus=max(counts))
    root = tempfile.mkdtemp(prefix="bench-scale-")
    started = time.monotonic()
    try:
        sizes_ = measure_sizes(root)
        print(size_table(sizes_), flush=True)
        rows = []
        for env_name in ENVS:
            for n in counts:
                row = measure(env_name, n, seconds, root)
                rows.append(row)
                c = row["collect"]
                print(
                    f"{env_name}, {n} actors: {c['env_steps_per_sec']:,.0f} env steps/s collected; "
                    f"fed learner {row['fed']['updates_per_sec']:,.0f} updates/s "
                    f"(start-up {row['startup_seconds']:.1f} s)",
                    flush=True,
                )
    finally:
        ray.shutdown()
    result = dict(
        command="make bench-scale" + (" ARGS=--quick" if args.quick else ""),
        machine=dict(
            cpus=os.cpu_count(), platform=platform.platform(), python=platform.python_version()
        ),
        envs_per_actor=ENVS_PER_ACTOR,
        env_steps_per_call=STEPS_PER_CALL,
        window_seconds=seconds,
        total_seconds=time.monotonic() - started,
        sizes=sizes_,
        rows=rows,
    )
    text = table(rows)
    print(text)
    out = Path(root) / "scale.json" if args.quick else OUT
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    if not args.quick:
        replace_between(DOC, "scale-bench", text)
        replace_between(DOC, "scale-sizes", size_table(sizes_))
        print(f"updated {DOC}")


if __name__ == "__main__":
    main()
