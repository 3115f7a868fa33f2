"""The bound for the in-graph loops: the train step alone, the env step alone, and the loop.

    make bench-bound                  # PPO and DQN CartPole, 5 repeats of ~3 s per figure
    make bench-bound ARGS=--quick     # 1 repeat of ~1 s per figure: a smoke test

For PPO CartPole (experiments/configs/cartpole_ppo.cfg) and DQN CartPole
(experiments/configs/cartpole.cfg), each built with the suite's own `build(config)`:

(a) the agent's train step alone, on one fixed batch of the loop's shape;
(b) the TF-native env's batched step alone, `--num_envs` envs, random actions;
(c) the bound those two imply for the config's schedule (env steps and gradient steps per
    iteration): env steps / (grad steps x (a) + batched env steps x (b));
(d) the loop's collection alone (collect policy, replay or rollout, metrics), and the serial
    estimate (a) + (d);
(e) the real compiled loop, `loop.run(k)`, and its share of (c) and of the serial estimate.

Writes benchmarks/results/bound.json and the bound section of docs/benchmarks.md (--out
and --doc elsewhere). TensorFlow is imported only when measuring, so `--help` is instant.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from solve_bench import (
    DOC,
    REPO,
    OneLineParser,
    cpu_stall_seconds,
    fail,
    fmt,
    machine_info,
    machine_sentence,
    md_row,
    shown,
)
from solve_bench import write_doc as write_section

RESULTS = REPO / "benchmarks" / "results" / "bound.json"
MARKERS = ("<!-- bound:start -->", "<!-- bound:end -->")
HEADING = "## The bound: the in-graph loops' arithmetic alone"
# name -> (label, flagfile relative to the repo)
CONFIGS = {
    "ppo": ("PPO CartPole", "experiments/configs/cartpole_ppo.cfg"),
    "dqn": ("DQN CartPole", "experiments/configs/cartpole.cfg"),
}
PACKAGES = ("tensorflow", "tf-agents", "tf-keras", "gymnasium", "numpy")
CONTENDED_LOAD = 0.5  # 1-minute load average above which the figures are flagged
TRAIN_STEPS_PER_CALL = 32  # (a): gradient steps per compiled call
ENV_STEPS_PER_CALL = 256  # (b): batched env steps per compiled call
COLLECT_ITERATIONS = 8  # (d): the replay loop's collect-only iterations per call
MEASURED = (
    "Each config's run is built as `experiments/train.py` builds it (`build(config)`, seed 0) "
    "and its loop prefilled. (a) `agent.train` {train_per_call} times per compiled call "
    "(a `tf.while_loop`) on one fixed batch of the loop's shape: DQN one replay sample of "
    "`--batch_size` x (n_step + 1) steps; PPO one minibatch of a collected rollout after the "
    "agent's own prepare step (values, GAE advantages, returns), as [minibatch, 1] entries. "
    "(b) a fresh copy of the training env (`make_train_env`: the TF-native CartPole with the "
    "config's `--num_envs`), {env_per_call} batched steps per compiled call with uniform "
    "random actions. (c) env steps per iteration / (grad steps per iteration x (a) + batched "
    "env steps per iteration x (b)): the loop's arithmetic alone, with no policy forward "
    "pass in collection, no replay insert or sample, no advantages and no minibatch gather. "
    "(d) the loop's own collection without training: the replay loop's `collect_train(k, 0)`, "
    "the rollout loop's `collect_fixed_steps` with the collect policy and the loop's metrics; "
    "serial estimate = env steps / (grad steps x (a) + env steps / (d)). (e) the real "
    "`loop.run(k)`, k the iterations the session runs per call between evaluations "
    "(`iterations_within(--eval_interval)`), env steps from the loop's counter. Medians over "
    "repeats after a warm-up call that traces; each repeat times every figure once, so a "
    "drifting load hits them alike."
)


# --- the arithmetic (pure: no TensorFlow) ------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Schedule:
    """One collect-train iteration of a loop: what it collects and how often it trains."""

    env_steps: int  # env steps, summed over the parallel envs
    batched_steps: int  # batched env steps: each steps every env once
    grad_steps: int  # gradient steps (calls of the agent's train step)


def iteration_schedule(loop: Mapping[str, Any], num_envs: int) -> Schedule:
    """The schedule of a loop section's fields (`dataclasses.asdict(config.loop)`)."""
    if "rollout_steps" in loop:  # the rollout loop: epochs x minibatches per rollout
        entries = loop["rollout_steps"] * num_envs
        minibatch = loop.get("minibatch_size") or entries
        return Schedule(entries, loop["rollout_steps"], loop["num_epochs"] * (entries // minibatch))
    if "collect_steps_per_iteration" in loop:  # the replay loop
        collect = loop["collect_steps_per_iteration"]
        return Schedule(collect, collect // num_envs, loop["train_steps_per_iteration"])
    raise ValueError(f"no collect-train schedule in the loop fields {sorted(loop)}")


def iteration_seconds(schedule: Schedule, grad_step_s: float, batched_step_s: float) -> float:
    return schedule.grad_steps * grad_step_s + schedule.batched_steps * batched_step_s


def bound_rate(schedule: Schedule, grad_step_s: float, batched_step_s: float) -> float:
    """Env steps/s of an iteration that costs only its gradient steps and env steps."""
    return schedule.env_steps / iteration_seconds(schedule, grad_step_s, batched_step_s)


def serial_rate(schedule: Schedule, grad_step_s: float, collect_rate: float) -> float:
    """Env steps/s of an iteration that trains and collects one after the other."""
    seconds = schedule.grad_steps * grad_step_s + schedule.env_steps / collect_rate
    return schedule.env_steps / seconds


def figures(schedule: Schedule, num_envs: int, medians: Mapping[str, float]) -> dict[str, float]:
    """The table's figures from the medians: `train` grad steps/s (a), `env` batched env
    steps/s (b), `collect` and `loop` env steps/s (d), (e)."""
    grad_s, batched_s = 1.0 / medians["train"], 1.0 / medians["env"]
    bound = bound_rate(schedule, grad_s, batched_s)
    train_share = schedule.grad_steps * grad_s / iteration_seconds(schedule, grad_s, batched_s)
    serial = serial_rate(schedule, grad_s, medians["collect"])
    loop = medians["loop"]
    per_env_step = schedule.grad_steps / schedule.env_steps
    return {
        "grad_step_ms": 1e3 * grad_s,
        "train_ms_per_env_step": 1e3 * grad_s * per_env_step,
        "train_only_env_steps_per_s": 1.0 / (grad_s * per_env_step) if per_env_step else None,
        "batched_step_us": 1e6 * batched_s,
        "env_us_per_env_step": 1e6 * batched_s / num_envs,
        "env_only_env_steps_per_s": num_envs / batched_s,
        "bound_env_steps_per_s": bound,
        "bound_train_share": train_share,
        "collect_env_steps_per_s": medians["collect"],
        "serial_env_steps_per_s": serial,
        "loop_env_steps_per_s": loop,
        "loop_percent_of_bound": 100.0 * loop / bound,
        "loop_percent_of_serial": 100.0 * loop / serial,
    }


# --- the measurements (TensorFlow, imported here only) -----------------------------------


def prepared_run(flagfile: str, seed: int) -> tuple[Any, Any]:
    """The config and the live parts `experiments/train.py` would train, loop prefilled."""
    import tfa_suite  # noqa: F401  (selects Keras 2 before TensorFlow loads)
    from tfa_suite.startup import import_tensorflow

    import_tensorflow()
    from bench_atari import prepared  # seeds, builds, prefills (and traces the replay loop)

    from tfa_suite.flags import config_from_flagfile
    from tfa_suite.run.train import resolve_config

    config = resolve_config(config_from_flagfile(str(REPO / flagfile), seed=seed))
    return config, prepared(config)


def rollout_batch(parts: Any) -> Any:
    """One minibatch of a collected and prepared rollout, shaped as the rollout loop trains."""
    import tensorflow as tf

    from tfa_suite.loops.collect import collect_fixed_steps

    cfg, hooks, env = parts.config.loop, parts.built.hooks, parts.tf_env
    entries = cfg.rollout_steps * env.batch_size
    size = cfg.minibatch_size or entries

    @tf.function(autograph=False)
    def make() -> Any:
        steps, time_step = collect_fixed_steps(
            env, parts.built.collect_policy, cfg.rollout_steps, []
        )
        rollout = tf.nest.map_structure(lambda x: tf.experimental.numpy.swapaxes(x, 0, 1), steps)
        experience = rollout if hooks.prepare is None else hooks.prepare(rollout, time_step)
        if not hooks.entries_independent:
            return experience
        return tf.nest.map_structure(
            lambda x: tf.reshape(x, [entries, 1, *x.shape[2:]])[:size], experience
        )

    with tf.device(parts.device):
        return make()


def fixed_batch(parts: Any) -> Any:
    """A batch of the shape the loop trains on: a replay sample, or a rollout minibatch."""
    from tfa_suite.agents.interface import ReplayHooks

    hooks = parts.built.hooks
    if isinstance(hooks, ReplayHooks):
        batch, _ = parts.loop.replay.get_next(
            sample_batch_size=parts.config.loop.batch_size, num_steps=hooks.train_sequence_length
        )
        return batch
    return rollout_batch(parts)


def train_only(parts: Any, batch: Any, per_call: int = TRAIN_STEPS_PER_CALL) -> Callable[[], float]:
    """(a): `per_call` calls of `agent.train(batch)` in one compiled call; returns them."""
    import tensorflow as tf

    agent = parts.agent

    @tf.function(autograph=False)
    def run(batch: Any, count: tf.Tensor) -> tf.Tensor:
        def body(i: tf.Tensor, total: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            return i + 1, total + tf.cast(agent.train(batch).loss, tf.float32)

        with tf.device(parts.device):
            zero = (tf.constant(0), tf.constant(0.0))
            return tf.while_loop(lambda i, _: i < count, body, zero)[1]

    count = tf.constant(per_call)
    return lambda: (run(batch, count).numpy(), float(per_call))[1]


def env_only(config: Any, device: str, per_call: int = ENV_STEPS_PER_CALL) -> Callable[[], float]:
    """(b): a fresh training env, `per_call` batched steps of random actions per compiled
    call; returns the batched steps."""
    import tensorflow as tf
    from tf_agents.specs import tensor_spec

    from tfa_suite.envs import training_env
    from tfa_suite.envs.loading import env_spec

    with tf.device(device):
        env, _ = training_env.make_train_env(config.run, env_spec(config.run))
    n, spec = env.batch_size, env.action_spec()

    @tf.function(autograph=False)
    def run(count: tf.Tensor) -> tf.Tensor:
        def body(i: tf.Tensor, total: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            time_step = env.step(tensor_spec.sample_spec_nest(spec, outer_dims=(n,)))
            return i + 1, total + tf.reduce_sum(time_step.reward)

        with tf.device(device):
            return tf.while_loop(lambda i, _: i < count, body, (tf.constant(0), 0.0))[1]

    count = tf.constant(per_call)
    return lambda: (run(count).numpy(), float(per_call))[1]


def counted(parts: Any, call: Callable[[], Any]) -> Callable[[], float]:
    """`call`, returning the env steps it took by the loop's counter."""

    def step() -> float:
        before = int(parts.loop.env_steps.result())
        call()
        return float(int(parts.loop.env_steps.result()) - before)

    return step


def collect_only(parts: Any) -> Callable[[], float]:
    """(d): the loop's collection without training; returns the env steps it took."""
    import tensorflow as tf

    from tfa_suite.agents.interface import ReplayHooks
    from tfa_suite.loops.collect import collect_fixed_steps

    loop = parts.loop
    if isinstance(parts.built.hooks, ReplayHooks):
        from bench_atari import loop_step

        return loop_step(parts, COLLECT_ITERATIONS, 0)  # the loop's own call, 0 train steps
    observers = [loop.env_steps, loop.episodes, loop.train_return]
    policy, steps = parts.built.collect_policy, parts.config.loop.rollout_steps

    @tf.function(autograph=False)
    def rollout() -> tf.Tensor:
        with tf.device(parts.device):
            stacked, _ = collect_fixed_steps(parts.tf_env, policy, steps, observers)
            return tf.reduce_sum(stacked.reward)

    return counted(parts, rollout)


def loop_run(parts: Any) -> Callable[[], float]:
    """(e): one real `loop.run(k)` as the session calls it between evaluations."""
    k = parts.loop.iterations_within(parts.config.run.eval_interval)
    return counted(parts, lambda: parts.loop.run(k))


def measure_all(
    steps: Mapping[str, Callable[[], float]], repeats: int, seconds: float
) -> dict[str, dict[str, Any]]:
    """Units/s of each step: a warm-up call each, then `repeats` rounds that time every
    step once for `seconds` (bench_atari's `rate`); medians and samples."""
    from bench_atari import rate

    for step in steps.values():
        step()  # tracing and the first call's graph optimization
    samples: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            samples[name].append(rate(step, seconds))
    return {n: {"median": statistics.median(s), "samples": s} for n, s in samples.items()}


def measure_config(name: str, args: argparse.Namespace) -> dict[str, Any]:
    label, flagfile = CONFIGS[name]
    print(f"{label} ({flagfile}): building", flush=True)
    config, parts = prepared_run(flagfile, args.seed)
    schedule = iteration_schedule(dataclasses.asdict(config.loop), config.run.num_envs)
    steps = {
        "loop": loop_run(parts),
        "collect": collect_only(parts),
        "train": train_only(parts, fixed_batch(parts)),
        "env": env_only(config, parts.device),
    }
    stall_before, start = cpu_stall_seconds(), time.monotonic()
    measured = measure_all(steps, args.repeats, args.seconds)
    stall_after, seconds = cpu_stall_seconds(), time.monotonic() - start
    stalled = None if stall_before is None or stall_after is None else stall_after - stall_before
    medians = {k: v["median"] for k, v in measured.items()}
    result = {
        "label": label, "flagfile": flagfile, "agent": config.run.agent,
        "num_envs": config.run.num_envs, "backend": parts.backend,
        "schedule": dataclasses.asdict(schedule),
        "loop_iterations_per_call": parts.loop.iterations_within(config.run.eval_interval),
        "figures": figures(schedule, config.run.num_envs, medians), "samples": measured,
        "cpu_stall_percent": None if stalled is None else 100 * stalled / seconds,
    }  # fmt: skip
    f = result["figures"]
    bound, loop, share = (f[k] for k in ("bound_env_steps_per_s", "loop_env_steps_per_s",
                                         "loop_percent_of_bound"))  # fmt: skip
    print(f"  bound {bound:,.0f} env steps/s, loop {loop:,.0f} ({share:.0f}%)", flush=True)
    return result


# --- the report ---------------------------------------------------------------------------


def schedule_text(r: Mapping[str, Any]) -> str:
    s = r["schedule"]
    return (
        f"{s['env_steps']} env steps ({r['num_envs']} envs x {s['batched_steps']}), "
        f"{s['grad_steps']} grad steps"
    )


ROWS: tuple[tuple[str, Callable[[Mapping[str, Any]], str]], ...] = (
    ("schedule per iteration", schedule_text),
    ("(a) train step alone, fixed batch", lambda r: (
        f"{r['figures']['grad_step_ms']:.2f} ms per grad step = "
        f"{r['figures']['train_ms_per_env_step'] * 1e3:.0f} µs per env step")),
    ("(b) env batched step alone, random actions", lambda r: (
        f"{r['figures']['batched_step_us']:.0f} µs per batched step = "
        f"{r['figures']['env_us_per_env_step']:.1f} µs per env step")),
    ("**(c) bound from (a) + (b)**", lambda r: (
        f"**{r['figures']['bound_env_steps_per_s']:,.0f} env steps/s** "
        f"({100 * r['figures']['bound_train_share']:.0f}% of it training)")),
    ("(d) collection alone (collect policy, storage, metrics)",
     lambda r: f"{r['figures']['collect_env_steps_per_s']:,.0f} env steps/s"),
    ("serial estimate (a) + (d)",
     lambda r: f"{r['figures']['serial_env_steps_per_s']:,.0f} env steps/s"),
    ("(e) the loop, `loop.run(k)`", lambda r: (
        f"{r['figures']['loop_env_steps_per_s']:,.0f} env steps/s (k = "
        f"{r['loop_iterations_per_call']})")),
    ("**loop ÷ bound**", lambda r: f"**{r['figures']['loop_percent_of_bound']:.0f}%**"),
    ("loop ÷ serial estimate", lambda r: f"{r['figures']['loop_percent_of_serial']:.0f}%"),
    ("CPU stall % while measuring (Linux PSI; high: contended)",
     lambda r: fmt(r.get("cpu_stall_percent"), ".0f")),
)  # fmt: skip


def markdown(report: Mapping[str, Any], sentence: Callable[[Any], str] = machine_sentence) -> str:
    configs = report["configs"]
    lines = [
        f"Command: `make bench-bound` ({report['mode']}), seed {report['seed']}. "
        f"{sentence(report)}",
        "",
        *([f"**Contended:** {report['warning']}", ""] if report["warning"] else []),
        md_row(["figure", *(c["label"] for c in configs.values())]),
        md_row(["---", *("---" for _ in configs)]),
    ]
    lines += [md_row([name, *(cell(c) for c in configs.values())]) for name, cell in ROWS]
    return "\n".join([*lines, "", "What is measured: " + report["measured"]])


def parse_configs(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names or set(names) - set(CONFIGS):
        raise argparse.ArgumentTypeError(f"choose from {', '.join(CONFIGS)}, not {text!r}")
    return list(dict.fromkeys(names))


def make_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 repeat of ~1 s per figure")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per figure (5)")
    parser.add_argument("--seconds", type=float, default=None, help="per timed run (3; quick 1)")
    parser.add_argument("--configs", type=parse_configs, default=list(CONFIGS), help="ppo,dqn")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"JSON ({shown(RESULTS)})")
    parser.add_argument("--doc", type=Path, default=DOC, help=f"markdown ({shown(DOC)})")
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    args = make_parser().parse_args(argv)
    args.repeats = 1 if args.quick else args.repeats
    args.seconds = args.seconds or (1.0 if args.quick else 3.0)
    if args.repeats < 1 or not args.seconds > 0:
        fail("--repeats must be >= 1 and --seconds > 0")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    load_before = os.getloadavg()[0]
    warning = None
    if load_before > CONTENDED_LOAD:
        warning = (
            f"1-minute load average {load_before:.2f} > {CONTENDED_LOAD} at start: other "
            "processes competed for the CPU, so these figures are low and noisy"
        )
        print(f"WARNING: {warning}", flush=True)
    configs = {name: measure_config(name, args) for name in args.configs}
    mode = f"{'quick' if args.quick else 'full'}: {args.repeats} x {args.seconds:g} s per figure"
    report = {
        "benchmark": "in-graph loops: train step alone, env step alone, their bound, the loop",
        "mode": mode,
        "seed": args.seed, "finished": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average": {"before": load_before, "after": os.getloadavg()[0]},
        "warning": warning, "machine": machine_info(PACKAGES),
        "measured": MEASURED.format(
            train_per_call=TRAIN_STEPS_PER_CALL, env_per_call=ENV_STEPS_PER_CALL
        ),
        "configs": configs,
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    write_section(args.doc, *MARKERS, text := markdown(report), heading=HEADING)
    print(f"\nwrote {shown(args.out.resolve())} and {shown(args.doc.resolve())}\n\n{text}")
    if warning:
        print(f"\nWARNING: {warning}")


if __name__ == "__main__":
    sys.exit(main())
