"""Atari throughput: emulator, collection, updates, and the compiled loop that combines them.

    make bench-atari                  # 3 repeats of ~20 s per figure + subprocess variants
    make bench-atari ARGS=--quick     # 1 repeat of ~3 s each: a smoke test

For one config (--flagfile, default experiments/configs/pong_fast.cfg). Writes
benchmarks/results/atari.json and the atari section of docs/benchmarks.md.
"""

from __future__ import annotations

import tfa_suite  # noqa: F401  isort: skip  (selects Keras 2 before TensorFlow loads)

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from tf_agents.replay_buffers.tf_uniform_replay_buffer import TFUniformReplayBuffer

from tfa_suite import envs
from tfa_suite.config import TrainConfig, parse_conv_layers
from tfa_suite.envs.atari_eval import atari_game, make_vector_env
from tfa_suite.flags import config_from_flagfile
from tfa_suite.run.train import Parts, build, resolve_config

REPO = Path(__file__).resolve().parent.parent
CFG = "experiments/configs/pong_fast.cfg"
RESULTS = REPO / "benchmarks" / "results" / "atari.json"
DOC = REPO / "docs" / "benchmarks.md"
START, END = "<!-- atari-bench:start -->", "<!-- atari-bench:end -->"
CONTENDED_LOAD = 0.5  # 1-minute load average above which the figures are flagged
FILL_STEPS = 2_000  # env steps in the replay before anything is timed
UPDATES_PER_CALL = 8  # updates per call of the train-only function
PACKAGES = ("tensorflow", "tf-agents", "tf-keras", "ale-py", "numpy")
VARIANTS = {  # train-only (c): "xla" in this process, the others each in a fresh process
    "xla": "jit_compile=True around agent.train (vs (c), same process)",
    "default": "TensorFlow defaults (fresh process)",
    "intra_op_1": "intra-op threads 1",
    "intra_op_2": "intra-op threads 2",
    "bf16_keras": "Keras mixed_bfloat16 global policy",
    "bf16_onednn": "grappler auto_mixed_precision_onednn_bfloat16 (speed only)",
}
MEASURED = (
    "(a) ale-py `AtariVectorEnv`, the training env's options and `num_envs`, random actions. "
    "(b) the real `build(...)` parts: `loop.run(k, 0)`, collection into the replay (the "
    "epsilon-greedy policy runs its network even at epsilon 1); env steps from `loop.env_steps`. "
    "(c) a `tf.function` whose `tf.while_loop` samples `replay.get_next(batch, n_step + 1)` and "
    "calls `agent.train`. (d) the real `loop.run(k, train_steps_per_iteration)`. The bound "
    "assumes collection and training overlap perfectly; the loop runs them one after the other, "
    "so the serial estimate is what it can reach. FLOP/update: conv/dense forward FLOPs x batch "
    "x (online forward + backward at ~2x + target forward + online forward on the n-step "
    "observation for double DQN). (e) the buffer's variables' bytes / capacity. Medians over "
    "repeats after a warm-up call; variants run in fresh subprocesses against the `default` one, "
    "XLA in-process against (c); within 5% counts as no change; bf16 is timed, not validated."
)


def rate(step: Callable[[], float], seconds: float) -> float:
    """Calls `step` (returns the units it did) until `seconds` have passed; units/s."""
    done, start = 0.0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        done += step()
    return done / elapsed


def measure(step: Callable[[], float], args: argparse.Namespace, what: str) -> dict[str, Any]:
    step()  # warm-up: tracing, first emulator frames
    samples = [rate(step, args.seconds) for _ in range(args.repeats)]
    print(f"  {what}: {statistics.median(samples):,.1f}", flush=True)
    return {"median": statistics.median(samples), "samples": samples}


def load(flagfile: str) -> tuple[TrainConfig, envs.EnvSpec]:
    config = resolve_config(config_from_flagfile(flagfile))
    if atari_game(config.run.env) is None:
        sys.exit(f"{flagfile}: {config.run.env} is not an ALE/<Game>-v5 id")
    kwargs = envs.parse_env_kwargs(config.run.env_kwargs)
    return config, envs.EnvSpec(config.run.env, kwargs, config.run.max_episode_steps)


def raw_emulator(config: TrainConfig, spec: envs.EnvSpec, args: argparse.Namespace) -> dict:
    """(a): the options `AtariEnvironment(training=True)` passes, random actions, no TF."""
    env = make_vector_env(
        atari_game(config.run.env), config.run.num_envs, spec.kwargs, repeat_action_probability=0.0,
        episodic_life=False, life_loss_info=True, reward_clipping=True, stack_num=4,
    )  # fmt: skip
    rng, actions = np.random.default_rng(config.run.seed), int(env.single_action_space.n)
    env.reset(seed=config.run.seed)

    def step() -> float:
        for _ in range(16):
            env.step(rng.integers(0, actions, config.run.num_envs))
        return 16.0 * config.run.num_envs

    try:
        return measure(step, args, "(a) emulator agent steps/s")
    finally:
        env.close()


def prepared(config: TrainConfig) -> Parts:
    tf.random.set_seed(config.run.seed)
    parts = build(config)
    parts.loop.prefill(FILL_STEPS)  # also traces loop.run
    return parts


def loop_step(parts: Parts, iterations: int, train_steps: int) -> Callable[[], float]:
    """One compiled `loop.run` call; returns the env steps it took."""
    k, t = tf.constant(iterations, tf.int64), tf.constant(train_steps, tf.int64)

    def step() -> float:
        before = int(parts.loop.env_steps.result())
        parts.loop.collect_train(k, t)
        return float(int(parts.loop.env_steps.result()) - before)

    return step


def train_only(parts: Parts, config: TrainConfig, jit: bool) -> Callable[[], float]:
    """(c): replay sample -> `agent.train`, UPDATES_PER_CALL times in one compiled call."""
    agent, replay = parts.agent, parts.loop.replay

    def update(experience: Any) -> tf.Tensor:
        return tf.cast(agent.train(experience).loss, tf.float32)

    train = tf.function(update, jit_compile=True, autograph=False) if jit else update

    @tf.function(autograph=False)
    def run(count: tf.Tensor) -> tf.Tensor:
        def body(i: tf.Tensor, total: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            sample, _ = replay.get_next(config.loop.batch_size, num_steps=config.agent.n_step + 1)
            return i + 1, total + train(sample)

        with tf.device(parts.device):
            zero = (tf.constant(0, tf.int64), tf.constant(0.0))
            return tf.while_loop(lambda i, _: i < count, body, zero)[1]

    count = tf.constant(UPDATES_PER_CALL, tf.int64)
    return lambda: (run(count).numpy(), float(UPDATES_PER_CALL))[1]


def worker(variant: str, args: argparse.Namespace) -> None:
    """A fresh process: one runtime setting, then train-only (c); prints a RESULT line."""
    if variant.startswith("intra_op_"):
        tf.config.threading.set_intra_op_parallelism_threads(int(variant.rsplit("_", 1)[1]))
    elif variant == "bf16_keras":
        tf.keras.mixed_precision.set_global_policy("mixed_bfloat16")
    elif variant == "bf16_onednn":
        tf.config.optimizer.set_experimental_options({"auto_mixed_precision_onednn_bfloat16": True})
    config, _ = load(args.flagfile)
    parts = prepared(config)
    result = measure(train_only(parts, config, jit=False), args, f"{variant} updates/s")
    layers = [layer for layer in parts.agent._q_network.submodules if hasattr(layer, "kernel")]
    dtypes = sorted({str(layer.compute_dtype) for layer in layers})  # of Conv2D and Dense
    result.update(replay=type(parts.loop.replay).__name__, layer_compute_dtypes=dtypes)
    print("RESULT " + json.dumps(result), flush=True)


def run_variant(variant: str, args: argparse.Namespace) -> dict[str, Any]:
    argv = [sys.executable, __file__, f"--worker={variant}", f"--flagfile={args.flagfile}",
            f"--seconds={args.seconds}", f"--repeats={args.repeats}"]  # fmt: skip
    try:
        proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=1800)
    except subprocess.TimeoutExpired:
        return {"error": "timed out after 1800 s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line.removeprefix("RESULT "))
    lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
    return {"error": f"exit {proc.returncode}: {lines[-1] if lines else 'no output'}"[:300]}


def guarded(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return fn()
    except Exception as e:  # a variant that fails is a result, not a crash
        return {"error": f"{type(e).__name__}: {str(e).strip().splitlines()[0]}"[:300]}


def verdict(name: str, result: dict[str, Any], base: float | None) -> str:
    if name == "default" or "error" in result or result.get("skipped") or not base:
        return "baseline" if name == "default" else "failed" if "error" in result else "skipped"
    if name == "bf16_keras" and "bfloat16" not in result.get("layer_compute_dtypes", []):
        return "no effect: TF-Agents builds its Conv2D/Dense layers as float32"
    ratio = result["median"] / base
    return "helped" if ratio > 1.05 else "slower" if ratio < 0.95 else "no clear change"


def update_flops(config: TrainConfig, obs_shape: list[int], num_actions: int) -> float:
    height, width, channels = obs_shape
    macs = 0
    for filters, kernel, stride in parse_conv_layers(config.agent.conv_layers):
        height, width = (height - kernel) // stride + 1, (width - kernel) // stride + 1
        macs += height * width * filters * kernel * kernel * channels
        channels = filters
    inputs = height * width * channels
    for units in [*config.agent.fc_layers, num_actions]:
        macs, inputs = macs + inputs * units, units
    passes = 4 + int(
        config.agent.double_dqn
    )  # forward + backward (~2x) + target (+ double) forward
    return 2.0 * macs * config.loop.batch_size * passes


def matmul_gflops(seconds: float, n: int = 1024, chain: int = 8) -> float:
    a = tf.random.normal([n, n]) / math.sqrt(n)  # keeps the chained products bounded

    @tf.function
    def run(x: tf.Tensor) -> tf.Tensor:
        for _ in range(chain):
            x = tf.matmul(x, a)
        return tf.reduce_sum(x)

    run(a)
    return rate(lambda: (run(a).numpy(), 2.0 * n**3 * chain / 1e9)[1], seconds)


def replay_bytes(parts: Parts, config: TrainConfig) -> dict[str, Any]:
    """(e): allocated bytes / capacity of TF-Agents' buffer and, if present, FrameStoreReplay."""
    spec, used = parts.agent.collect_data_spec, parts.loop.replay
    # TFUniformReplayBuffer's storage is all per item but one 8-byte counter, so a small
    # instance gives its per-transition figure when the loop uses another buffer.
    uniform = used if isinstance(used, TFUniformReplayBuffer) else TFUniformReplayBuffer(
        spec, batch_size=config.run.num_envs, max_length=64, device=parts.device)  # fmt: skip
    total = sum(v.shape.num_elements() * v.dtype.size for v in uniform.variables())
    out = {"tf_uniform": total / int(uniform.capacity), "frame_store": None, "note": None}
    try:
        from tfa_suite.replay.frame_store import FrameStoreReplay
    except ImportError as e:
        return {**out, "note": f"no tfa_suite.replay.frame_store.FrameStoreReplay ({e})"}
    if not hasattr(FrameStoreReplay, "bytes_per_transition"):
        return {**out, "note": "FrameStoreReplay has no bytes_per_transition()"}
    store = used if isinstance(used, FrameStoreReplay) else None
    num_envs = config.run.num_envs
    result = guarded(lambda: {"b": float((store or FrameStoreReplay(
        spec, batch_size=num_envs, stack=int(spec.observation.shape[-1]),
        max_length=math.ceil(config.loop.replay_capacity / num_envs), device=parts.device,
    )).bytes_per_transition())})  # fmt: skip
    return {**out, "frame_store": result.get("b"), "note": result.get("error")}


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = [ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if "model name" in ln]
    git = ["git", "-C", str(REPO), "describe", "--always", "--dirty"]
    dists = metadata.distributions()
    installed = {d.metadata["Name"].lower().replace("_", "-"): d.version for d in dists}
    return {
        "cpu_model": model[0] if model else "?", "cores": os.cpu_count(),
        "avx512_bf16": " avx512_bf16" in cpuinfo,
        "versions": {p: installed.get(p) for p in PACKAGES},
        "git": subprocess.run(git, capture_output=True, text=True).stdout.strip(),
    }  # fmt: skip


def num(value: float | None, spec: str = ",.0f") -> str:
    return "–" if value is None else format(value, spec)


def table(r: dict[str, Any]) -> str:
    f, m, cpu, rb, load = r["figures"], r["machine"], r["cpu"], r["replay_bytes"], r["load"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    lines = [
        f"Command: `make bench-atari` ({r['mode']}), `--flagfile={r['flagfile']}` ({r['env']}, "
        f"{r['num_envs']} envs, {r['env_steps_per_update']:g} env steps per update, loop replay "
        f"{r['replay']}). Run {r['finished']} on {m['cpu_model']}, {m['cores']} cores, 1-min load "
        f"average {load['before'][0]:.2f} before, {load['after'][0]:.2f} after; tfa_suite "
        f"{m['git']}, {versions}.",
        "",
        *([f"**Contended:** {r['warning']}", ""] if r["contended"] else []),
        "| figure | median |",
        "| --- | --- |",
    ]
    fs = rb["frame_store"]
    fs_text = f"{fs:,.0f} ({rb['tf_uniform'] / fs:.1f}x less)" if fs else f"– ({rb['note']})"
    rows = [
        ("(a) raw emulator, ale-py vector env, random actions",
         f"{num(f['raw_emulator'])} agent steps/s"),
        ("(b) tfa_suite collect only, `loop.run(k, 0)`", f"{num(f['collect_only'])} env steps/s"),
        ("(c) train only, replay sample + `agent.train`",
         f"{num(f['train_only'], '.1f')} updates/s = {num(f['train_env_steps'])} env steps/s"),
        ("bound min((a), (c) x steps/update)", f"{num(f['bound'])} env steps/s"),
        ("(d) collect + train, `loop.run` at the config's ratio",
         f"{num(f['collect_train'])} env steps/s = **{num(f['percent_of_bound'])}% of bound** "
         "(target >= 90%)"),
        ("serial estimate 1/(1/(b) + 1/((c) x steps/update))",
         f"{num(f['serial_estimate'])} env steps/s; (d) = {num(f['percent_of_serial'])}% of it"),
        ("(c) vs the CPU", f"{cpu['gflop_per_update']:.2f} GFLOP/update -> "
         f"{cpu['achieved_gflops']:.0f} GFLOP/s = {cpu['percent_of_matmul']:.0f}% of a measured "
         f"float32 matmul's {cpu['matmul_gflops']:.0f} GFLOP/s"),
        ("(e) replay bytes per transition",
         f"TFUniformReplayBuffer {rb['tf_uniform']:,.0f}; FrameStoreReplay {fs_text}"),
    ]  # fmt: skip
    lines += [f"| {a} | {b} |" for a, b in rows]
    lines += ["", "| train-step variant (c) | updates/s | vs baseline | verdict |"]
    lines.append("| --- | ---: | ---: | --- |")
    for name, v in r["variants"].items():
        value = v.get("error") or v.get("skipped") or num(v.get("median"), ".1f")
        ratio = f"{v['ratio']:.2f}x" if v.get("ratio") else "–"
        lines.append(f"| {name}: {VARIANTS[name]} | {value} | {ratio} | {v['verdict']} |")
    return "\n".join([*lines, "", "What is measured: " + MEASURED])


def write_doc(markdown: str) -> None:
    """Rewrites only what lies between the atari markers (appended when missing)."""
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    if START not in text or END not in text.split(START, 1)[1]:
        text = text.rstrip("\n") + f"\n\n{START}\n{END}\n"
    head, rest = text.split(START, 1)
    DOC.write_text(f"{head}{START}\n{markdown}\n{END}{rest.split(END, 1)[1]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--flagfile", default=CFG)
    parser.add_argument("--quick", action="store_true", help="1 repeat of ~3 s per figure")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per figure")
    parser.add_argument("--seconds", type=float, default=None, help="per timed run (20; quick 3)")
    parser.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.seconds = args.seconds or (3.0 if args.quick else 20.0)
    args.repeats = 1 if args.quick else args.repeats
    if args.worker:
        return worker(args.worker, args)

    load_before = os.getloadavg()
    contended = load_before[0] > CONTENDED_LOAD
    warning = (f"1-minute load average {load_before[0]:.2f} > {CONTENDED_LOAD} at start: other "
               "processes competed for the CPU, so these figures are low and noisy")  # fmt: skip
    if contended:
        print(f"WARNING: {warning}", flush=True)
    config, spec = load(args.flagfile)
    per_update = config.loop.collect_steps_per_iteration / max(
        config.loop.train_steps_per_iteration, 1
    )
    raw = raw_emulator(config, spec, args)
    parts = prepared(config)
    collect = measure(loop_step(parts, 16, 0), args, "(b) collect-only env steps/s")
    train = measure(train_only(parts, config, jit=False), args, "(c) updates/s")
    variants = {"xla": guarded(lambda: measure(train_only(parts, config, True), args, "XLA"))}
    both = measure(
        loop_step(parts, 4, config.loop.train_steps_per_iteration), args, "(d) env steps/s"
    )
    replay = replay_bytes(parts, config)
    gflops = statistics.median(matmul_gflops(args.seconds) for _ in range(args.repeats))
    obs_shape = parts.tf_env.time_step_spec().observation.shape.as_list()
    flop = update_flops(config, obs_shape, int(parts.tf_env.action_spec().maximum) + 1)
    print(f"  (e) replay bytes/transition {replay}; matmul {gflops:.0f} GFLOP/s", flush=True)
    info = machine()
    for name in list(VARIANTS)[1:]:
        skip = name.startswith("bf16") and not info["avx512_bf16"]
        variants[name] = {"skipped": "no AVX512_BF16"} if skip else run_variant(name, args)
        print(f"  {name}: {variants[name]}", flush=True)
    for name, v in variants.items():
        ref = train["median"] if name == "xla" else variants["default"].get("median")
        v["verdict"] = verdict(name, v, ref)
        v["ratio"] = v["median"] / ref if ref and "median" in v else None

    a, b, c, d = raw["median"], collect["median"], train["median"], both["median"]
    bound, serial = min(a, c * per_update), 1.0 / (1.0 / b + 1.0 / (c * per_update))
    report: dict[str, Any] = {
        "benchmark": "Atari env steps/s: emulator, collection, updates, collect+train loop",
        "mode": f"{'quick' if args.quick else 'full'}: {args.repeats} x {args.seconds:g} s",
        "flagfile": args.flagfile, "env": config.run.env, "num_envs": config.run.num_envs,
        "env_steps_per_update": per_update, "replay": type(parts.loop.replay).__name__,
        "finished": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load": {"before": load_before, "after": os.getloadavg()}, "contended": contended,
        "warning": warning if contended else None, "machine": info,
        "figures": {
            "raw_emulator": a, "collect_only": b, "train_only": c,
            "train_env_steps": c * per_update, "bound": bound,
            "collect_train": d, "percent_of_bound": 100 * d / bound,
            "serial_estimate": serial, "percent_of_serial": 100 * d / serial,
        },
        "cpu": {"gflop_per_update": flop / 1e9, "achieved_gflops": c * flop / 1e9,
                "matmul_gflops": gflops, "percent_of_matmul": 100 * c * flop / 1e9 / gflops},
        "replay_bytes": replay, "variants": variants, "measured": MEASURED,
        "samples": {"raw_emulator": raw, "collect_only": collect, "train_only": train,
                    "collect_train": both},
    }  # fmt: skip
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2, default=float) + "\n")
    write_doc(markdown := table(report))
    print(f"\nwrote {RESULTS.relative_to(REPO)} and {DOC.relative_to(REPO)}\n\n{markdown}")
    if contended:
        print(f"\nWARNING: {warning}")


if __name__ == "__main__":
    main()
