"""Runs survive SIGKILL, SIGTERM, damaged checkpoints and divergence without losing work."""

import tfa_suite  # noqa: F401  isort: skip

import csv
import glob
import os
import re
import signal
import subprocess
import time

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

from tfa_suite.errors import UserError
from tfa_suite.loops.replay import ReplayLoop
from tfa_suite.run.train import TrainingDiverged, train

CHECKPOINT_INTERVAL = 1_000
NUM_ENVS = 4
COLLECT_STEPS_PER_ITERATION = 16
# A checkpoint is saved at the end of the first collect iteration at or past each multiple
# of the interval, and one iteration takes at most this many env steps.
MOST_STEPS_PER_ITERATION = COLLECT_STEPS_PER_ITERATION + NUM_ENVS - 1


class NanRewardEnv(gym.Env):
    """Gives an infinite reward from step 300 on, which drives the loss to Inf/NaN.

    (An outright NaN reward is refused earlier, by TF-Agents' time-step checks.)"""

    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self):
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}

    def step(self, action):
        self.t += 1
        reward = float("inf") if self.t >= 300 else 1.0
        return np.zeros(2, np.float32), reward, False, self.t % 20 == 0, {}


@pytest.fixture
def train_flags(tiny_config, binaries):
    """Flags of a graph-backend CartPole run long enough to be killed at several points."""

    def flags(root: str, num_env_steps: int = 200_000) -> list[str]:
        config = tiny_config(
            root,
            backend="graph",
            num_envs=NUM_ENVS,
            collect_steps_per_iteration=COLLECT_STEPS_PER_ITERATION,
            train_steps_per_iteration=4,
            batch_size=32,
            replay_capacity=4_000,
            initial_collect_steps=200,
            num_env_steps=num_env_steps,
            checkpoint_interval=CHECKPOINT_INTERVAL,
            metrics_interval=250,
            stop_at_threshold=False,
        )
        return binaries.flags(config)

    return flags


def checkpoint_steps(root: str) -> list[int]:
    paths = glob.glob(os.path.join(root, "checkpoints", "ckpt-*.index"))
    return sorted(int(re.search(r"ckpt-(\d+)\.index$", p).group(1)) for p in paths)


def last_metrics_step(root: str) -> int:
    path = os.path.join(root, "metrics.csv")
    if not os.path.exists(path):
        return 0
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return int(rows[-1]["env_steps"]) if rows else 0


def assert_all_checkpoints_readable(root: str) -> None:
    for step in checkpoint_steps(root):
        reader = tf.train.load_checkpoint(os.path.join(root, "checkpoints", f"ckpt-{step}"))
        assert reader.get_variable_to_shape_map(), f"ckpt-{step} is empty"


def wait_for(predicate, timeout: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, f"training exited early with {proc.returncode}"
        assert time.monotonic() < deadline, "timed out waiting for training progress"
        time.sleep(0.05)


def test_sigkill_at_several_points_then_resume(tmp_path, binaries, train_flags):
    root = str(tmp_path / "run")
    resumed_at: list[int] = []
    # Kill points: during start-up (before any checkpoint), just after a checkpoint
    # appears, and in the middle of training between checkpoints.
    plans = [
        ("startup", lambda: os.path.exists(os.path.join(root, "config.json"))),
        ("after-first-checkpoint", lambda: len(checkpoint_steps(root)) >= 1),
        ("mid-training", lambda: last_metrics_step(root) >= 3_500),
    ]
    for name, ready in plans:
        log = open(tmp_path / f"{name}.log", "w")
        proc = binaries.start(
            "experiments/train.py", *train_flags(root), stdout=log, stderr=subprocess.STDOUT
        )
        try:
            wait_for(ready, 120, proc)
            progress_at_kill = last_metrics_step(root)
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
            log.close()
        assert_all_checkpoint_steps = checkpoint_steps(root)
        assert_all_checkpoints_readable(root)
        text = open(tmp_path / f"{name}.log").read()
        match = re.search(r"resumed from \S+ at env step ([\d,]+)", text)
        if match:
            resumed_at.append(int(match.group(1).replace(",", "")))
        if assert_all_checkpoint_steps:
            # At most one checkpoint interval (plus the iteration that crossed it) is lost.
            lost = progress_at_kill - max(assert_all_checkpoint_steps)
            assert lost < CHECKPOINT_INTERVAL + MOST_STEPS_PER_ITERATION, (name, lost)
    # Final run: resume and finish.
    final = binaries.run("experiments/train.py", *train_flags(root, num_env_steps=5_000))
    assert final.returncode == 0, final.stderr[-2000:]
    match = re.search(r"resumed from \S+ at env step ([\d,]+)", final.stdout)
    assert match, final.stdout[-2000:]
    resumed_at.append(int(match.group(1).replace(",", "")))
    # The mid-training run and the final one resume (the first two found no checkpoint yet).
    assert len(resumed_at) == 2, resumed_at
    assert resumed_at[0] < resumed_at[1], f"counters went backwards: {resumed_at}"
    assert_all_checkpoints_readable(root)
    with open(os.path.join(root, "metrics.csv"), newline="") as f:
        steps = [int(r["env_steps"]) for r in csv.DictReader(f)]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)
    assert steps[-1] >= 5_000


def stopped_with_sigterm(binaries, flags, ready, meanwhile=lambda proc: None):  # noqa: ANN001, ANN201
    """train.py started with `flags`, waited on until `ready()`, given to `meanwhile`, then
    sent SIGTERM: the ended process and its output (stdout and stderr together). It is
    killed if anything in between fails."""
    proc = binaries.start(
        "experiments/train.py", *flags, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        wait_for(ready, 120, proc)
        meanwhile(proc)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc, out


def test_sigterm_checkpoints_and_exits_cleanly(tmp_path, binaries, train_flags):
    root = str(tmp_path / "run")
    ready = lambda: last_metrics_step(root) >= 1_500  # noqa: E731
    proc, out = stopped_with_sigterm(binaries, train_flags(root), ready)
    assert proc.returncode == 128 + signal.SIGTERM, out[-2000:]
    assert "Traceback" not in out
    match = re.search(r"stopped at env step ([\d,]+); checkpoint saved", out)
    assert match, out[-2000:]
    stopped_at = int(match.group(1).replace(",", ""))
    assert max(checkpoint_steps(root)) == stopped_at
    assert_all_checkpoints_readable(root)


def test_a_second_process_on_a_training_run_dir_is_refused(tmp_path, binaries, train_flags):
    root = str(tmp_path / "run")

    def second_process(first: subprocess.Popen) -> None:
        config_written = os.stat(os.path.join(root, "config.json")).st_mtime_ns
        second = binaries.run("experiments/train.py", *train_flags(root))
        assert second.returncode != 0
        errors = second.stderr.strip().splitlines()
        assert errors == [
            f"error: --root_dir {root} is in use by another training process (pid {first.pid}); "
            "wait for it to end, or stop it (SIGTERM saves a checkpoint) and resume"
        ], second.stderr[-2000:]
        # Refused before it wrote anything: the run's config is the first process's.
        assert os.stat(os.path.join(root, "config.json")).st_mtime_ns == config_written

    ready = lambda: last_metrics_step(root) >= 500  # noqa: E731
    first, out = stopped_with_sigterm(binaries, train_flags(root), ready, second_process)
    assert first.returncode == 128 + signal.SIGTERM, out[-2000:]
    assert_all_checkpoints_readable(root)
    # The lock went with its process: the same command resumes the run.
    resumed = binaries.run("experiments/train.py", *train_flags(root, num_env_steps=2_000))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed from" in resumed.stdout


def test_the_run_dir_lock_is_held_while_open_and_released_after(tmp_path, tiny_config):
    from tfa_suite.run.run_dir import LOCK_FILE, open_run_dir

    config = tiny_config(tmp_path / "run")
    run, _ = open_run_dir(config)
    with pytest.raises(
        UserError, match=rf"in use by another training process \(pid {os.getpid()}\)"
    ):
        open_run_dir(config)
    run.release()
    open_run_dir(config)[0].release()
    # A lock file left by a process killed before it wrote the config is not a foreign
    # file: the dir still takes a fresh run, and train() releases the lock when it returns.
    fresh = tmp_path / "killed_early"
    fresh.mkdir()
    (fresh / LOCK_FILE).write_text("12345\n")
    result = train(tiny_config(fresh))
    assert result.resumed_from_env_steps == 0
    open_run_dir(tiny_config(fresh))[0].release()


def test_checkpoints_and_rows_land_within_one_iteration_of_their_multiples(tmp_path, tiny_config):
    # CartPole episodes are short, so many iterations hit episode boundaries and take
    # more than collect_steps_per_iteration env steps; the schedule must not drift.
    root = str(tmp_path / "run")
    config = tiny_config(root, num_env_steps=2_000, checkpoint_interval=300, metrics_interval=100)
    train(config)
    most = config.loop.collect_steps_per_iteration + config.run.num_envs - 1
    with open(os.path.join(root, "metrics.csv"), newline="") as f:
        rows = [int(r["env_steps"]) for r in csv.DictReader(f)]
    assert len(rows) >= 15, rows
    assert all(step % 100 < most for step in rows[:-1]), rows
    steps = checkpoint_steps(root)
    assert steps and all(step % 300 < most for step in steps[:-1]), steps


def test_unreadable_newest_checkpoint_falls_back_to_previous(tmp_path, capfd, tiny_config):
    root = str(tmp_path / "run")
    train(tiny_config(root))
    steps = checkpoint_steps(root)
    assert len(steps) >= 2
    newest, previous = steps[-1], steps[-2]
    for path in glob.glob(os.path.join(root, "checkpoints", f"ckpt-{newest}.data-*")):
        with open(path, "r+b") as f:
            f.truncate(16)  # a disk that filled up mid-write
    result = train(tiny_config(root, num_env_steps=600))
    err = capfd.readouterr().err
    assert f"ckpt-{newest} is unreadable" in err
    assert result.resumed_from_env_steps == previous
    assert result.env_steps >= 600


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, tiny_config):
    root = str(tmp_path / "run")
    config = tiny_config(
        root,
        env="tests.run.test_reliability:NanRewardEnv",
        backend="python",
        num_env_steps=2_000,
        initial_collect_steps=64,
    )
    with pytest.raises(TrainingDiverged, match="loss became (nan|inf)"):
        train(config)
    steps = checkpoint_steps(root)
    assert steps, "checkpoints from before the divergence must be kept"
    assert_all_checkpoints_readable(root)
    # Nothing diverged was saved: the newest checkpoint's networks and optimizer are finite.
    reader = tf.train.load_checkpoint(os.path.join(root, "checkpoints", f"ckpt-{max(steps)}"))
    agent_vars = [n for n in reader.get_variable_to_dtype_map() if n.startswith("agent/")]
    assert len(agent_vars) > 4
    for name, dtype in reader.get_variable_to_dtype_map().items():
        if name in agent_vars and dtype.is_floating:
            assert np.all(np.isfinite(reader.get_tensor(name))), name
    assert not os.path.exists(os.path.join(root, "result.json"))


class RaisingEnv(NanRewardEnv):
    def step(self, action):
        if self.t >= 100:
            raise RuntimeError("simulator lost its licence")
        return super().step(action)


def test_exception_inside_the_environment_is_reported_in_one_line(tmp_path, tiny_config):
    config = tiny_config(
        str(tmp_path / "run"),
        env="tests.run.test_reliability:RaisingEnv",
        backend="python",
        num_env_steps=2_000,
    )
    with pytest.raises(UserError, match="environment failed.*simulator lost its licence"):
        train(config)


def test_same_seed_graph_runs_are_identical(tmp_path, tiny_config):
    a = train(tiny_config(str(tmp_path / "a"), eval_interval=200))
    b = train(tiny_config(str(tmp_path / "b"), eval_interval=200))
    assert a.evaluations == b.evaluations

    def learning_columns(run):
        with open(tmp_path / run / "metrics.csv", newline="") as f:
            return [
                (r["env_steps"], r["loss"], r["train_return"], r["eval_mean"])
                for r in csv.DictReader(f)
            ]

    assert learning_columns("a") == learning_columns("b")


def watch_prefills(monkeypatch) -> list[dict]:
    """Records every ReplayLoop.prefill call: its target, the loop's (env steps, replay
    frames, train steps) before and after it, and the episodes that ended during it."""
    calls = []
    real = ReplayLoop.prefill

    def counts(loop: ReplayLoop) -> tuple[int, int, int]:
        return (
            int(loop.env_steps.result()),
            int(loop.replay.num_frames()),
            int(loop.core._agent.train_step_counter.numpy()),
        )

    def prefill(loop: ReplayLoop, num_env_steps: int) -> int:
        before, episodes = counts(loop), int(loop.episodes.result())
        reached = real(loop, num_env_steps)
        ended = int(loop.episodes.result()) - episodes
        calls.append(dict(target=num_env_steps, before=before, after=counts(loop), ended=ended))
        return reached

    monkeypatch.setattr(ReplayLoop, "prefill", prefill)
    return calls


def test_resume_without_replay_checkpoint_refills_before_training(
    tmp_path, tiny_config, monkeypatch, capsys
):
    root = str(tmp_path / "run")
    fields = dict(checkpoint_replay=False, initial_collect_steps=64)
    first = train(tiny_config(root, **fields))
    latest = tf.train.latest_checkpoint(os.path.join(root, "checkpoints"))
    names = [name for name, _ in tf.train.list_variables(latest)]
    assert names and not any(name.startswith("replay/") for name in names)
    prefills = watch_prefills(monkeypatch)
    capsys.readouterr()
    result = train(tiny_config(root, **fields, num_env_steps=600))
    start = result.resumed_from_env_steps
    assert start == first.env_steps >= 400
    out = capsys.readouterr().out
    assert "collecting 64 steps into the replay buffer before training" in out
    assert "replay buffer not checkpointed (--checkpoint_replay=false): refilled with 64" in out
    # One refill, from the restored counters and an empty replay, to 64 steps past them.
    [refill] = prefills
    assert refill["before"] == (start, 0, first.train_steps)
    assert refill["target"] == start + 64
    steps, frames, train_steps = refill["after"]
    most = 8 + 2 - 1  # the env steps one collect iteration can take (see ReplayLoop)
    assert start + 64 <= steps < start + 64 + most
    # The replay holds every refilled step, plus the uncounted LAST -> FIRST step after
    # each episode that ended (at most one more per env, from before the resume).
    assert steps - start <= frames <= steps - start + refill["ended"] + 2
    assert train_steps == first.train_steps, "the refill must not train"
    # Then training went on from there, one update per collect iteration of 8 to 9 steps.
    assert result.env_steps >= 600
    updates = result.train_steps - first.train_steps
    assert (result.env_steps - steps) // most <= updates <= -(-(result.env_steps - steps) // 8)


def test_resume_to_finish_does_not_refill_an_uncheckpointed_replay(
    tmp_path, tiny_config, monkeypatch
):
    root = str(tmp_path / "run")
    config = tiny_config(root, checkpoint_replay=False, initial_collect_steps=64)
    first = train(config)
    os.remove(os.path.join(root, "result.json"))  # as if stopped before exporting
    prefills = watch_prefills(monkeypatch)
    again = train(config)  # --num_env_steps already reached: export only
    assert prefills == []
    assert (again.env_steps, again.train_steps) == (first.env_steps, first.train_steps)
    assert os.path.exists(os.path.join(root, "result.json"))


@pytest.mark.parametrize("backend", ["graph", "python"])
def test_resume_restores_every_saved_value(tmp_path, backend, tiny_config):
    root = str(tmp_path / "run")
    train(tiny_config(root, backend=backend))
    # assert_fully_restored runs after the first train call; it raises on leftovers.
    resumed = train(tiny_config(root, backend=backend, num_env_steps=600))
    assert resumed.resumed_from_env_steps >= 400 and resumed.env_steps >= 600


def test_checkpoint_state_the_run_does_not_restore_is_refused(tmp_path, monkeypatch, tiny_config):
    import tfa_suite.run.session as session

    root = str(tmp_path / "run")
    train(tiny_config(root))
    real = session.RunCheckpoint

    def without_train_return(directory, **objects):
        # As if this version of the code no longer tracked a piece of saved state.
        objects.pop("train_return")
        return real(directory, **objects)

    monkeypatch.setattr(session, "RunCheckpoint", without_train_return)
    with pytest.raises(UserError, match="holds state this run did not restore"):
        train(tiny_config(root, num_env_steps=600))


def test_run_solved_before_an_interruption_finishes_without_training_on(tmp_path, tiny_config):
    root = str(tmp_path / "run")
    # A target any policy reaches: the first gymnasium evaluation solves the run.
    config = tiny_config(
        root, backend="python", target_return=1.0, eval_interval=100, num_env_steps=5_000
    )
    first = train(config)
    assert first.solved and first.env_steps < 5_000
    os.remove(os.path.join(root, "result.json"))  # as if killed while exporting
    again = train(config)
    assert again.env_steps == first.env_steps
    assert again.solved_at_env_steps == first.solved_at_env_steps


def test_changed_learning_hyperparameter_is_refused_on_resume(tmp_path, tiny_config):
    root = str(tmp_path / "run")
    train(tiny_config(root))
    with pytest.raises(UserError, match="learning_rate"):
        train(tiny_config(root, learning_rate=0.5, num_env_steps=800))
    # The fields that only say how long and how often may change.
    extended = train(tiny_config(root, num_env_steps=600, eval_interval=300))
    assert extended.env_steps >= 600


def test_finished_run_without_solving_can_be_extended(tmp_path, tiny_config):
    root = str(tmp_path / "run")
    first = train(tiny_config(root, target_return=1.0))  # solved only by the final evaluation
    assert first.solved and first.solved_at_env_steps is None
    second = train(tiny_config(root, target_return=1.0, num_env_steps=600))
    assert second.env_steps >= 600
