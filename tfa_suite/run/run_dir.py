"""The run directory: what a run writes, and the checks that keep runs from mixing.

<root_dir>/
  config.json        resolved configuration by section: run, loop, agent (also
                     flags.txt, usable as --flagfile)
  checkpoints/       agent, optimizer, counters, replay buffer, metrics history
  summaries/         TensorBoard event files (train/, eval/, perf/ tags)
  metrics.csv        one row per progress line and per evaluation
  policy/            greedy policy as a SavedModel, plus env.json
  policy_sampled/    with --export_sampled_policy: the sampling policy, exported the same way
  learning_curve.png
  video.mp4
  result.json        final figures of the run
  .lock              held by the process training the run (its pid inside), so a second
                     process on the same run dir is refused instead of mixing its files in
"""

from __future__ import annotations

import fcntl
import json
import os
from typing import IO

from tfa_suite.config import TrainConfig, describe, flatten_saved, identity_fields, same_value
from tfa_suite.errors import UserError

CONFIG_FILE = "config.json"
LOCK_FILE = ".lock"


class RunDir:
    def __init__(self, root: str):
        self.root = root
        self._lock: IO[str] | None = None

    def lock(self) -> None:
        """Takes the run for this process (`_lock`), or raises a UserError naming the
        process that holds it."""
        self._lock = _lock(self)

    def release(self) -> None:
        """Lets another process open the run (the OS also does so when this one ends)."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def path(self, *parts: str) -> str:
        return os.path.join(self.root, *parts)

    @property
    def checkpoints(self) -> str:
        return self.path("checkpoints")

    @property
    def summaries(self) -> str:
        return self.path("summaries")

    @property
    def metrics(self) -> str:
        return self.path("metrics.csv")

    @property
    def policy(self) -> str:
        return self.path("policy")

    @property
    def policy_sampled(self) -> str:
        return self.path("policy_sampled")

    @property
    def curve(self) -> str:
        return self.path("learning_curve.png")

    @property
    def video(self) -> str:
        return self.path("video.mp4")

    @property
    def result(self) -> str:
        return self.path("result.json")


def open_run_dir(config: TrainConfig) -> tuple[RunDir, bool]:
    """Creates the run dir, or checks that an existing one holds a run of this config.

    Returns the RunDir and whether a previous run is there to resume. Refuses, before
    writing anything, a path that is a file, not writable, not a tfa_suite run, or a run
    whose identity (env, network, seed, ...) differs from `config`.
    """
    root = config.run.root_dir
    if os.path.exists(root) and not os.path.isdir(root):
        raise UserError(f"--root_dir {root} is a file, not a directory")
    run = RunDir(root)
    resuming = False
    # A .lock alone is a fresh run killed before it wrote its config.
    if os.path.isdir(root) and set(os.listdir(root)) - {LOCK_FILE}:
        if not os.path.isfile(run.path(CONFIG_FILE)):
            raise UserError(
                f"--root_dir {root} is not empty and holds no tfa_suite run ({CONFIG_FILE} is "
                "missing); choose a new or empty directory"
            )
        _check_compatible(run, config)
        resuming = True
    try:
        os.makedirs(root, exist_ok=True)
        probe = run.path(".write_test")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as e:
        raise UserError(f"--root_dir {root} is not writable: {e.strerror}") from None
    run.lock()
    # Write the config atomically so a kill never leaves a half-written one behind.
    tmp = run.path(CONFIG_FILE + ".tmp")
    config.save(tmp)
    os.replace(tmp, run.path(CONFIG_FILE))
    with open(run.path("flags.txt"), "w") as f:
        f.write(describe(config))
    return run, resuming


def _lock(run: RunDir) -> IO[str]:
    """An exclusive lock on the run dir for this process's life, or a UserError naming the
    process that holds it. flock is released by the OS when its holder exits, however it
    exits, so a killed run never leaves its dir locked."""
    f = open(run.path(LOCK_FILE), "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip()
        f.close()
        raise UserError(
            f"--root_dir {run.root} is in use by another training process"
            + (f" (pid {holder})" if holder else "")
            + "; wait for it to end, or stop it (SIGTERM saves a checkpoint) and resume"
        ) from None
    f.seek(0)
    f.truncate()
    f.write(f"{os.getpid()}\n")
    f.flush()
    return f


def _check_compatible(run: RunDir, config: TrainConfig) -> None:
    try:
        with open(run.path(CONFIG_FILE)) as f:
            saved = flatten_saved(json.load(f))
    except (OSError, json.JSONDecodeError, AttributeError) as e:
        raise UserError(
            f"{run.path(CONFIG_FILE)} is unreadable ({e}); cannot resume this run"
        ) from None
    mine = config.flat()
    diffs = [
        f"{name}: run has {saved.get(name)!r}, flags give {mine[name]!r}"
        for _, name in identity_fields(config)
        if name in saved and not same_value(saved[name], mine[name])
    ]
    if diffs:
        raise UserError(
            f"--root_dir {run.root} holds a run with a different configuration ("
            + "; ".join(diffs)
            + "); pass a new --root_dir to start a fresh run, or the run's own flags "
            f"(--flagfile={run.path('flags.txt')}) to resume it"
        )
