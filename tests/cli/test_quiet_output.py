"""A run's terminal output: TensorFlow's CPU-only start-up noise and TF-Agents' numpy
deprecation warning are gone; anything else written to stderr still shows."""

from __future__ import annotations

import os
import subprocess
import sys

from tfa_suite.startup import NOISE, filtered_stderr

CODE = """
import os
from tfa_suite.startup import filtered_stderr
with filtered_stderr():
    os.write(2, b"I0000 cudart_stub.cc:31] Could not find cuda drivers on your machine\\n")
    os.write(2, b"E0000 cuda_platform.cc:52] failed call to cuInit: UNKNOWN ERROR\\n")
    os.write(2, b"E0000 something real went wrong\\n")
print("done")
"""


def test_only_the_known_noise_is_filtered():
    proc = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "done"
    assert proc.stderr == "E0000 something real went wrong\n"


def test_the_filter_restores_stderr_even_when_the_block_raises(capfd):
    try:
        with filtered_stderr():
            os.write(2, b"kept line\n")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "kept line\nafter\n"


def test_a_ppo_run_prints_no_start_up_noise_and_no_deprecation_warning(tmp_path, binaries):
    proc = binaries.run(
        "experiments/train.py", "--agent=ppo", "--env=CartPole-v1", "--num_envs=2",
        "--rollout_steps=16", "--num_env_steps=64", "--eval_interval=0", "--video_episodes=0",
        "--actor_layers=8", "--value_layers=8", f"--root_dir={tmp_path / 'ppo'}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not [n for n in NOISE if n in proc.stderr], proc.stderr
    assert "DeprecationWarning" not in proc.stderr, proc.stderr
    assert "done:" in proc.stdout
