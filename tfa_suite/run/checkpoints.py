"""Checkpoints that survive kills: atomic saves, and restore that skips unreadable ones.

TensorFlow writes a checkpoint's data to a temporary prefix and renames it into place,
then rewrites the `checkpoint` index file atomically, so a kill mid-save leaves the
previous checkpoint as the newest listed one. A checkpoint can still be unreadable (a
disk that filled up, a file truncated by hand): restore then falls back to the next
older one with a warning instead of failing the run.
"""

from __future__ import annotations

import glob
import os
import re
import sys

import tensorflow as tf

from tfa_suite.errors import UserError


class RunCheckpoint:
    def __init__(self, directory: str, max_to_keep: int = 3, **objects: tf.Module):
        self.directory = directory
        self._status = None
        self.checkpoint = tf.train.Checkpoint(**objects)
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, directory, max_to_keep=max_to_keep
        )

    def candidates(self) -> list[str]:
        """Checkpoint prefixes, newest first, from the index file and from the disk.

        The disk is scanned too because the index can be the thing that is damaged.
        """
        listed = list(self.manager.checkpoints)
        on_disk = {
            p[: -len(".index")] for p in glob.glob(os.path.join(self.directory, "ckpt-*.index"))
        }
        prefixes = set(listed) | on_disk

        def number(prefix: str) -> int:
            match = re.search(r"ckpt-(\d+)$", prefix)
            return int(match.group(1)) if match else -1

        return sorted(prefixes, key=number, reverse=True)

    def restore_latest(self) -> str | None:
        """Restores the newest readable checkpoint; returns its prefix, or None if none."""
        for prefix in self.candidates():
            try:
                status = self.checkpoint.restore(prefix)
            # IndexError: TF's reader on a truncated data file ("Read less bytes than requested").
            except (tf.errors.OpError, ValueError, IndexError) as e:
                reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                print(
                    f"warning: checkpoint {prefix} is unreadable ({reason}); trying an older one",
                    file=sys.stderr,
                    flush=True,
                )
                continue
            try:
                status.assert_existing_objects_matched()
            except AssertionError as e:
                # Readable but of another shape: a run of a different configuration. The
                # run dir's config check should have refused it; never fall back past it.
                raise UserError(
                    f"checkpoint {prefix} does not match this run's objects ({e}); "
                    "start a fresh run with a new --root_dir"
                ) from None
            self._status = status
            return prefix
        return None

    def expect_partial(self) -> None:
        """Silences TF's exit-time warnings about saved values that were never restored.

        Values whose objects do not exist yet (optimizer slots before the first train step)
        are restored when they are created; only a run that never trains leaves them
        unread. Training resumes keep TF's warning, which would flag a real mismatch.
        """
        if self._status is not None:
            self._status.expect_partial()

    def assert_fully_restored(self) -> None:
        """After the first train step of a resumed run: every saved value found its object.

        Deferred values (optimizer slots) are restored when the first train step creates
        them, so from then on anything left unread means the checkpoint and this run hold
        different state, and training on would silently drop the difference.
        """
        if self._status is None:
            return
        try:
            self._status.assert_consumed()
        except AssertionError as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else "unmatched values"
            raise UserError(
                f"the checkpoint in {self.directory} holds state this run did not restore "
                f"({first}); start a fresh run with a new --root_dir"
            ) from None
        self._status = None

    def has(self, env_steps: int) -> bool:
        latest = self.manager.latest_checkpoint
        return latest is not None and latest.endswith(f"ckpt-{env_steps}")

    def save(self, env_steps: int) -> str:
        return self.manager.save(checkpoint_number=env_steps)
