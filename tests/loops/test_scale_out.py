"""--num_actors without starting Ray: flags, refusals, the missing-Ray error, the pieces.

These run in `make test` whether or not Ray is installed; the runs on a real local Ray
are in tests/loops/test_ray_actors.py (`make test-ray`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tfa_suite import config as config_lib
from tfa_suite.agents.q_learning import apex_epsilon
from tfa_suite.catalog import make_config
from tfa_suite.config import identity_fields
from tfa_suite.envs.loading import EnvSpec, make_gym_env, reward_threshold
from tfa_suite.errors import UserError
from tfa_suite.loops.ray.config import RayConfig, ray_installed
from tfa_suite.loops.ray.pool import actor_seed
from tfa_suite.loops.ray.runtime import failure_line

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_missing_ray_is_one_line_that_says_how_to_install_it(binaries):
    # The binary with `import ray` made to fail, as in a venv without the extra.
    code = (
        "import runpy, sys; sys.modules['ray'] = None; "
        "sys.argv = ['experiments/train.py', '--num_actors=2', '--root_dir=/nonexistent/x']; "
        "runpy.run_path('experiments/train.py', run_name='__main__')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=binaries.repo, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last == (
        "error: --num_actors needs Ray, which is not installed; install it with "
        "`make install-ray` (Ray core, pinned in requirements/ray-lock.txt)"
    )
    assert "run dir:" not in done.stdout


def test_the_ray_section_holds_the_actor_flags_and_other_loops_refuse_them():
    config = make_config(agent="dqn", num_actors=2)
    assert isinstance(config.ray, RayConfig)
    assert config.ray.num_actors == 2
    # config.json keeps the Ray fields inside its "loop" section, as before the split.
    assert config.to_json()["loop"]["num_actors"] == 2 and "ray" not in config.to_json()
    with pytest.raises(UserError, match=r"--num_actors does not apply to --agent=ppo \(rollout"):
        make_config(agent="ppo", num_actors=2)


@pytest.mark.parametrize(
    "fields, message",
    [
        (dict(ray_address="127.0.0.1:6379"), "--ray_address applies only with --num_actors > 0"),
        (dict(replay_ratio=0.5), "--replay_ratio applies only with --num_actors > 0"),
        (dict(actor_exploration="apex"), "--actor_exploration applies only with --num_actors"),
        (dict(num_actors=-1), "--num_actors must be >= 0"),
    ],
)
def test_actor_flags_are_checked(fields, message):
    with pytest.raises(UserError, match=message):
        config_lib.validate(make_config(agent="dqn", **fields))


@pytest.mark.skipif(not ray_installed(), reason="Ray is not installed")
@pytest.mark.parametrize(
    "fields, message",
    [
        (dict(replay_ratio=-1.0), "--replay_ratio must be >= 0"),
        (dict(actor_exploration="greedy"), "--actor_exploration must be shared or apex"),
        (dict(actor_steps_per_call=0), "--actor_steps_per_call must be >= 1"),
        (dict(actor_max_restarts=-1), "--actor_max_restarts must be >= 0"),
    ],
)
def test_actor_values_are_checked(fields, message):
    with pytest.raises(UserError, match=message):
        config_lib.validate(make_config(agent="dqn", num_actors=2, **fields))


def test_num_actors_defines_the_experiment_and_the_cluster_does_not():
    identity = {name for _, name in identity_fields(make_config(agent="dqn"))}
    assert {"num_actors", "actor_steps_per_call", "replay_ratio", "actor_exploration"} <= identity
    assert not {"ray_address", "actor_max_restarts"} & identity


def test_the_default_replay_ratio_is_the_single_process_one():
    config = make_config(
        agent="dqn", num_actors=2, collect_steps_per_iteration=128, train_steps_per_iteration=32
    )
    assert config.ray.ratio(config.loop) == 0.25
    config = make_config(agent="dqn", num_actors=2, replay_ratio=0.0)
    assert config.ray.ratio(config.loop) == 0.0


def test_apex_epsilons_follow_the_paper():
    eps = [apex_epsilon(0.4, 7.0, i, 8) for i in range(8)]
    assert eps[0] == pytest.approx(0.4)
    assert eps[-1] == pytest.approx(0.4**8)
    assert eps == sorted(eps, reverse=True)
    assert apex_epsilon(0.4, 7.0, 0, 1) == pytest.approx(0.4)


def test_actor_seeds_differ_by_actor_restart_and_start_step():
    seeds = {
        actor_seed(0, i, launch, steps)
        for i in range(4)
        for launch in range(3)
        for steps in (0, 500)
    }
    assert len(seeds) == 24
    assert all(0 <= s < 2**30 for s in seeds)
    assert actor_seed(3, 1, 0, 0) == actor_seed(3, 1, 0, 0)


def test_failure_line_keeps_the_environment_message():
    wrapped = RuntimeError(
        "Traceback (most recent call last):\n  File x\nRuntimeError: simulator lost its licence\n"
        "\t [[{{node EagerPyFunc}}]]"
    )
    assert failure_line(wrapped) == "RuntimeError: simulator lost its licence"
    assert failure_line(ValueError("")) == "ValueError"


def test_the_latency_env_is_cartpole_with_a_fixed_delay_per_step():
    spec = EnvSpec("tfa_suite.envs.latency:DelayedCartPole-v1", {"delay_ms": 4})
    assert reward_threshold(spec) == 475.0
    env = make_gym_env(spec)
    env.reset(seed=0)
    start = time.perf_counter()
    for _ in range(10):
        env.step(0)
    assert time.perf_counter() - start >= 0.04
    assert env.spec.max_episode_steps == 500
    env.close()
    generic = make_gym_env(
        EnvSpec("tfa_suite.envs.latency:delayed", {"id": "Pendulum-v1", "delay_ms": 0})
    )
    assert generic.unwrapped.spec.id == "Pendulum-v1"
    generic.close()


def test_apex_exploration_needs_the_agents_hook(tiny_config):
    from tfa_suite.run.train import build

    config = tiny_config(agent="ddpg", num_actors=2, actor_exploration="apex")
    with pytest.raises(UserError, match="--actor_exploration=apex needs per-actor exploration"):
        build(config)


def _sentinel_module():
    """sentinel.py as the learner runs it: a standalone script, loaded from its path."""
    import importlib.util

    path = os.path.join(REPO, "tfa_suite", "loops", "ray", "sentinel.py")
    spec = importlib.util.spec_from_file_location("sentinel", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "said, raylet_up, reported",
    [
        ("done\n", True, False),  # a normal shutdown
        ("done\n", False, False),  # a normal shutdown stops a local raylet too
        ("", True, False),  # the learner died first (killed by hand): not the node
        ("", False, True),  # the raylet was gone when the learner ended: the node was lost
    ],
)
def test_the_sentinel_reports_a_lost_node_and_nothing_else(tmp_path, said, raylet_up, reported):
    import io
    import socket

    sentinel = _sentinel_module()
    path = str(tmp_path / "raylet")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    if not raylet_up:
        server.close()  # the socket file stays, refusing connections, as a dead raylet's
    err = io.StringIO()
    try:
        assert sentinel.watch(path, io.StringIO(said), err) is reported
    finally:
        server.close()
    lines = err.getvalue().splitlines()
    assert lines == ([sentinel.NODE_LOST] if reported else [])
    if reported:
        assert "Ray node" in lines[0] and "rerunning the same command resumes" in lines[0]


def test_the_sentinel_script_imports_nothing_heavy():
    # It must start in milliseconds beside a learner that is losing its node.
    proc = subprocess.run(
        [sys.executable, "-I", "-X", "importtime", os.path.join(REPO, "tfa_suite", "loops",
         "ray", "sentinel.py"), "/nonexistent/socket"],
        input="done\n", capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert not {"tensorflow", "ray", "tfa_suite", "numpy"} & imported
