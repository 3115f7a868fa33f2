"""What prioritized replay costs per batch, against uniform sampling, at 100k and 1M items.

    make bench-replay            # or: python benchmarks/bench_replay.py [--quick]

For each capacity it fills a TF-Agents uniform buffer with CartPole-sized transitions
(4 float32 observations), then times, inside one `tf.function` with a `tf.while_loop`
of `--batches` iterations (as the training loop runs them):

- uniform: `TFUniformReplayBuffer.get_next(batch, 2)`;
- prioritized: `PrioritizedReplay.get_next(batch, 2)` plus `update_priorities` of the
  drawn windows from random errors (the sum tree's walk down and its scatter up);
- cumsum: the alternative sampler the tree replaces, `tf.cumsum` of all priorities plus
  `tf.searchsorted` of the batch's targets (sampling only, no update).

It reports the median over `--repeats` timed calls of milliseconds per batch, and (not
with `--quick`) writes `benchmarks/results/replay.json`. Run it on an otherwise idle
machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tfa_suite  # noqa: E402,F401  (selects Keras 2 before TensorFlow is imported)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "replay.json")


def fill(capacity: int):  # noqa: ANN201
    """A uniform buffer and a prioritized one over the same storage kind, both full."""
    import tensorflow as tf
    from tf_agents.replay_buffers import tf_uniform_replay_buffer
    from tf_agents.specs import tensor_spec
    from tf_agents.trajectories import trajectory

    from tfa_suite.replay.prioritized import PrioritizedReplay

    spec = trajectory.Trajectory(
        step_type=tf.TensorSpec([], tf.int32), observation=tf.TensorSpec([4], tf.float32),
        action=tf.TensorSpec([], tf.int64), policy_info=(),
        next_step_type=tf.TensorSpec([], tf.int32), reward=tf.TensorSpec([], tf.float32),
        discount=tf.TensorSpec([], tf.float32),
    )  # fmt: skip
    # 1,000 env rows so that filling takes 1,000 adds, not a million.
    envs, length = 1000, capacity // 1000

    def new_buffer():  # noqa: ANN202
        return tf_uniform_replay_buffer.TFUniformReplayBuffer(spec, envs, length)

    uniform = new_buffer()
    prioritized = PrioritizedReplay(new_buffer(), sequence_length=2, alpha=0.6)
    item = tensor_spec.sample_spec_nest(spec, outer_dims=(envs,), seed=0)

    @tf.function(autograph=False)
    def add_all(buffer) -> tf.Tensor:  # noqa: ANN001
        def body(i: tf.Tensor) -> tf.Tensor:
            with tf.control_dependencies([buffer.add_batch(item)]):
                return i + 1

        return tf.while_loop(lambda i: i < length, body, [tf.constant(0)])

    for buffer in (uniform, prioritized):
        add_all(buffer)
    return uniform, prioritized


def timed(fn, batches: int, repeats: int) -> float:  # noqa: ANN001
    """Median milliseconds per batch over `repeats` calls of `batches` batches each."""
    fn(batches)  # trace and warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(batches).numpy()
        times.append((time.perf_counter() - start) / batches * 1e3)
    return statistics.median(times)


def measure(capacity: int, batch: int, batches: int, repeats: int) -> dict[str, float]:
    import tensorflow as tf

    uniform, prioritized = fill(capacity)
    leaves = prioritized.tree.size

    def looped(step):  # noqa: ANN001, ANN202
        @tf.function(autograph=False)
        def run(n: int) -> tf.Tensor:
            def body(i: tf.Tensor, acc: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
                return i + 1, acc + step()

            return tf.while_loop(lambda i, _: i < n, body, (tf.constant(0), tf.constant(0.0)))[1]

        return run

    def uniform_step() -> tf.Tensor:
        experience, _ = uniform.get_next(sample_batch_size=batch, num_steps=2)
        return tf.reduce_sum(experience.reward)

    def prioritized_step() -> tf.Tensor:
        experience, info = prioritized.get_next(batch, 2)
        errors = tf.random.uniform([batch])
        with tf.control_dependencies([prioritized.update_priorities(info.leaves, errors)]):
            return tf.reduce_sum(experience.reward) + tf.reduce_sum(info.weights)

    priorities = tf.Variable(tf.random.uniform([leaves]))

    def cumsum_step() -> tf.Tensor:
        sums = tf.cumsum(priorities.read_value())
        targets = tf.random.uniform([batch]) * sums[-1]
        return tf.cast(tf.reduce_sum(tf.searchsorted(sums, targets, side="right")), tf.float32)

    return {
        "capacity": capacity,
        "batch": batch,
        "uniform_ms": timed(looped(uniform_step), batches, repeats),
        "prioritized_ms": timed(looped(prioritized_step), batches, repeats),
        "cumsum_sample_ms": timed(looped(cumsum_step), batches, repeats),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer batches and repeats")
    parser.add_argument("--batch", type=int, default=32, help="samples per batch")
    args = parser.parse_args()
    batches, repeats = (50, 3) if args.quick else (200, 7)
    rows = []
    for capacity in (100_000, 1_000_000):
        row = measure(capacity, args.batch, batches, repeats)
        row["prioritized_over_uniform"] = row["prioritized_ms"] / row["uniform_ms"]
        rows.append(row)
        print(
            f"capacity {capacity:>9,} batch {args.batch}: uniform {row['uniform_ms']:.3f} ms, "
            f"prioritized (sample + update) {row['prioritized_ms']:.3f} ms "
            f"({row['prioritized_over_uniform']:.1f}x), "
            f"cumsum sampler {row['cumsum_sample_ms']:.3f} ms",
            flush=True,
        )
    record = {
        "what": "ms per batch, median of repeated tf.while_loop calls (benchmarks/bench_replay.py)",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "batches_per_call": batches,
        "repeats": repeats,
        "rows": rows,
    }
    if args.quick:  # rough figures: printed, never over the committed ones
        return
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(record, f, indent=2)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
