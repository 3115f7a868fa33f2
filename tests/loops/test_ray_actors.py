"""--num_actors on a real local Ray: runs of `experiments/train.py` with 2 actor processes.

Marked `ray` and run by `make test-ray` (about 3 minutes here: each TF actor takes
seconds to start), not by `make test`; skipped when Ray is not installed. Every run is a
fresh process that starts its own local Ray and must leave none of its actors behind.
"""

from __future__ import annotations

import csv
import importlib.metadata
import json
import math
import os
import re
import signal
import subprocess
import time

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

pytest.importorskip("ray")

pytestmark = pytest.mark.ray

# CartPole with 2 ms per env step: 2 envs per actor step at about 250 batched steps/s, so a
# run lasts long enough to kill a process mid-run; a round is 2 actors x 200 env steps.
RUN_FLAGS = [
    "--agent=dqn",
    "--env=tfa_suite.envs.latency:DelayedCartPole-v1",
    '--env_kwargs={"delay_ms": 2}',
    "--fc_layers=16",
    "--num_envs=2",
    "--num_actors=2",
    "--actor_steps_per_call=200",
    "--initial_collect_steps=200",
    "--collect_steps_per_iteration=8",
    "--train_steps_per_iteration=2",  # replay ratio 0.25
    "--batch_size=32",
    "--replay_capacity=20000",
    "--metrics_interval=400",
    "--checkpoint_interval=1000",
    "--eval_interval=2000",
    "--eval_episodes=2",
    "--stop_at_threshold=false",
    "--log_interval_seconds=0.01",
]
RATIO = 2 / 8


def locked_names(path: str) -> set[str]:
    with open(path) as f:
        lines = [line.split("#", 1)[0].strip() for line in f]
    return {canonicalize_name(Requirement(line).name) for line in lines if line}


def test_the_locks_hold_rays_whole_dependency_closure():
    # `make install-ray` installs with --no-deps, so a requirement of ray (or of one of its
    # requirements) that neither lock pins is only there if something else brought it; CI
    # once failed on filelock, which the bench extra had installed here.
    requirements = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "requirements")
    locked = locked_names(os.path.join(requirements, "lock.txt"))
    locked |= locked_names(os.path.join(requirements, "ray-lock.txt"))
    closure, todo = set(), ["ray"]
    while todo:
        name = canonicalize_name(todo.pop())
        if name in closure:
            continue
        closure.add(name)
        for spec in importlib.metadata.requires(name) or []:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    assert {"ray", "filelock", "click", "msgpack"} <= closure
    assert closure - locked == set()


def rows(root: str) -> list[dict[str, str]]:
    with open(os.path.join(root, "metrics.csv"), newline="") as f:
        return list(csv.DictReader(f))


def actor_pids(output: str) -> list[int]:
    match = re.search(r"Ray actors up .*\(pids ([\d, ]+);", output)
    assert match, output
    return [int(p) for p in match.group(1).split(",")]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[-1].split()[0] != "Z"


def wait_gone(pids: list[int], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.5)
    return [p for p in pids if alive(p)]


def assert_counters_monotone(table: list[dict[str, str]]) -> None:
    steps = [int(r["env_steps"]) for r in table]
    updates = [int(r["train_steps"]) for r in table]
    assert steps == sorted(steps) and updates == sorted(updates), (steps, updates)


def test_two_actor_run_writes_every_output(tmp_path, binaries):
    """With Ape-X's per-actor epsilons (the other runs use the shared schedule)."""
    root = str(tmp_path / "run")
    flags = [*RUN_FLAGS, "--actor_exploration=apex", "--num_env_steps=2400", f"--root_dir={root}"]
    done = binaries.run("experiments/train.py", *flags)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (
        "per-actor exploration: actor 0 epsilon 0.4 (Ape-X); actor 1 epsilon 0.000655 (Ape-X)"
        in done.stdout
    ), done.stdout
    for name in (
        "config.json",
        "flags.txt",
        "metrics.csv",
        "learning_curve.png",
        "video.mp4",
        "result.json",
        "policy/saved_model.pb",
        "policy/env.json",
    ):
        assert os.path.exists(os.path.join(root, name)), name
    assert os.listdir(os.path.join(root, "checkpoints"))
    result = json.load(open(os.path.join(root, "result.json")))
    assert result["env_steps"] >= 2400
    table = rows(root)
    assert_counters_monotone(table)
    # Per-actor throughput in every training row, and the replay ratio met at each one.
    training = [r for r in table if r["loss"]]
    assert training
    rates = ("actor0_env_steps_per_sec", "actor1_env_steps_per_sec", "learner_updates_per_sec")
    for r in training:
        # A row may fall between two rounds of one actor (rate 0), never below 0.
        assert all(math.isfinite(float(r[k])) and float(r[k]) >= 0 for k in rates)
        assert int(r["train_steps"]) == math.floor(RATIO * (int(r["env_steps"]) - 200))
    # Both actors delivered and the learner trained, over the run.
    for k in rates:
        assert sum(float(r[k]) for r in training) > 0, k
    # The same tags in TensorBoard.
    from tensorboard.backend.event_processing import event_accumulator

    events = event_accumulator.EventAccumulator(os.path.join(root, "summaries"))
    events.Reload()
    tags = set(events.Tags()["tensors"])
    assert {"perf/actor0_env_steps_per_sec", "perf/learner_updates_per_sec"} <= tags
    assert wait_gone(actor_pids(done.stdout), 30) == []

    # Finished: the same command only reports it, without starting Ray.
    again = binaries.run("experiments/train.py", *flags)
    assert again.returncode == 0 and "already complete" in again.stdout
    assert "Ray actors up" not in again.stdout

    # num_actors is part of the experiment (the replay's rows): a resume with another is refused.
    other = binaries.run("experiments/train.py", *flags, "--num_actors=3")
    assert other.returncode == 2
    assert "num_actors: run has 2, flags give 3" in other.stderr
    assert "Traceback" not in other.stderr


def test_a_killed_actor_is_replaced_and_a_killed_learner_resumes(tmp_path, binaries):
    root = str(tmp_path / "run")
    argv = [*RUN_FLAGS, "--num_env_steps=8000", "--video_episodes=0", f"--root_dir={root}"]
    proc = binaries.start(
        "experiments/train.py", *argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []

    def read_until(pattern: str, timeout: float = 240) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if re.search(pattern, line):
                return line
        proc.kill()
        pytest.fail(f"no line matching {pattern!r}:\n{''.join(lines)}")

    try:
        pids = actor_pids(read_until(r"Ray actors up"))
        read_until(r"step +\d")  # training has begun
        os.kill(pids[0], signal.SIGKILL)
        read_until(r"actor 0 failed: its process died")
        # The run goes on with a new actor 0: a checkpoint past the kill, then the
        # learner itself is killed outright.
        first_checkpoint = None
        deadline = time.monotonic() + 240
        while first_checkpoint is None and time.monotonic() < deadline:
            read_until(r"step +\d")
            folder = os.path.join(root, "checkpoints")
            saved = (
                [f for f in os.listdir(folder) if f.endswith(".index")]
                if os.path.isdir(folder)
                else []
            )
            if len(saved) >= 2:
                first_checkpoint = saved
        assert first_checkpoint, "".join(lines)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
    output = "".join(lines)
    assert output.count("failed:") == 1, output  # reported once
    assert "Traceback" not in output
    before = rows(root)
    assert_counters_monotone(before)
    # Ray ends a killed learner's actors by itself.
    assert wait_gone(pids[1:], 60) == []

    resumed = binaries.run("experiments/train.py", *argv)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert re.search(r"resumed from .*ckpt-\d+ at env step", resumed.stdout)
    table = rows(root)
    assert_counters_monotone(table)
    assert int(table[-1]["env_steps"]) >= 8000
    assert json.load(open(os.path.join(root, "result.json")))["env_steps"] >= 8000
    assert wait_gone(actor_pids(resumed.stdout), 30) == []


def test_an_env_that_keeps_failing_ends_the_run_in_one_line(tmp_path, tiny_config):
    """In process, through `train()`: the library entry point also leaves no Ray behind."""
    import ray

    from tfa_suite.errors import EnvironmentFailed
    from tfa_suite.run.train import train

    config = tiny_config(
        str(tmp_path / "run"),
        env="tests.loops.test_ray_actors:failing_cartpole",
        backend="python",
        num_actors=1,  # one actor's start and restart are enough here
        actor_steps_per_call=200,
        actor_max_restarts=1,
        initial_collect_steps=200,
        num_env_steps=4000,
    )
    with pytest.raises(EnvironmentFailed) as failure:
        train(config)
    assert re.fullmatch(
        r"actor \d failed 2 times in a row \(--actor_max_restarts=1\); the last failure: the "
        r"environment failed while stepping: RuntimeError: simulator lost its licence",
        str(failure.value),
    ), str(failure.value)
    assert not ray.is_initialized()


def failing_cartpole(**kwargs):  # noqa: ANN003, ANN201
    """CartPole that raises on the 50th step of each instance (a broken simulator)."""
    from gymnasium.envs.classic_control.cartpole import CartPoleEnv
    from gymnasium.wrappers import TimeLimit

    class Failing(CartPoleEnv):
        steps = 0

        def step(self, action):  # noqa: ANN001, ANN201
            self.steps += 1
            if self.steps >= 50:
                raise RuntimeError("simulator lost its licence")
            return super().step(action)

    return TimeLimit(Failing(**kwargs), 500)


def children(pid: int) -> dict[int, str]:
    """The live processes whose parent is `pid`, with their command lines."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().split(")")[-1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                command = f.read().replace(b"\0", b" ").decode(errors="replace")
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
        if parent == pid:
            found[int(entry)] = command
    return found


def test_a_lost_ray_node_is_one_line_and_the_rerun_resumes(tmp_path, binaries):
    """The learner's raylet killed mid-run, as an out-of-memory kill would take it: the
    learner is ended by Ray, and the run says why."""
    root = str(tmp_path / "run")
    argv = [*RUN_FLAGS, "--num_env_steps=6000", "--video_episodes=0", f"--root_dir={root}"]
    proc = binaries.start(
        "experiments/train.py", *argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            folder = os.path.join(root, "checkpoints")
            if re.search(r"step +\d", line) and os.path.isdir(folder) and os.listdir(folder):
                break
        else:
            pytest.fail("no checkpoint:\n" + "".join(lines))
        raylets = [p for p, c in children(proc.pid).items() if "raylet/raylet" in c]
        assert len(raylets) == 1, children(proc.pid)
        # The raylet itself, as the OOM killer would take it. (Killing the dashboard agent
        # takes the raylet down too, but only after its health check notices, which on a
        # loaded machine took longer than this test waits.)
        os.kill(raylets[0], signal.SIGKILL)
        rest, _ = proc.communicate(timeout=300)
        lines.append(rest)
    finally:
        if proc.poll() is None:
            proc.kill()
    output = "".join(lines)
    assert proc.returncode != 0, output
    lost = [ln for ln in output.splitlines() if "Ray node" in ln]
    assert len(lost) == 1 and "rerunning the same command resumes" in lost[0], output
    assert "Traceback" not in output

    resumed = binaries.run("experiments/train.py", *argv)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert re.search(r"resumed from .*ckpt-\d+ at env step", resumed.stdout)
    assert "Ray node" not in resumed.stdout + resumed.stderr
    assert json.load(open(os.path.join(root, "result.json")))["env_steps"] >= 6000
