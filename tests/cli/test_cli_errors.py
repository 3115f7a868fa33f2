"""User errors end the binaries with one `error:` line and exit status 2, never a traceback.

The binaries run as real subprocesses (conftest's `binaries`), started by one module
fixture on a pool of one worker per core so their TensorFlow imports overlap: one case of
each kind (a bad env, a flag of another agent, a root dir that must not be touched, a bad
policy dir for evaluate.py), since every binary maps a UserError to its line the same way
(`tfa_suite.cli.run_main`). The other inputs are checked in-process, below: the same
checks, without paying a TensorFlow import per case.
"""

from __future__ import annotations

import tfa_suite  # noqa: F401  -- first: it selects Keras 2 before TensorFlow loads

# isort: split

import concurrent.futures
import json
import os
import pathlib
import subprocess

import pytest

from tfa_suite.catalog import make_config
from tfa_suite.errors import UnsupportedSpaceError, UserError
from tfa_suite.run.run_dir import CONFIG_FILE, open_run_dir

TRAIN = "experiments/train.py"
EVALUATE = "experiments/evaluate.py"
# Keeps the runs that get past the checks (they must not) small.
SMALL = ["--fc_layers=8", "--replay_capacity=1000", "--num_env_steps=10", "--video_episodes=0"]


def last_line(outcome: subprocess.CompletedProcess) -> str:
    lines = [line for line in outcome.stderr.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def snapshot(path: pathlib.Path) -> dict[str, bytes]:
    """Every file under `path` with its bytes."""
    return {str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def cli(tmp_path_factory, binaries):
    """Sets up every case, runs all the binaries concurrently, returns name -> Outcome."""
    tmp = tmp_path_factory.mktemp("cli")
    paths = {name: tmp / name for name in ("unknown_env", "foreign_flag")}

    not_a_run = tmp / "not_a_run"
    not_a_run.mkdir()
    (not_a_run / "notes.txt").write_text("my notes\n")
    (not_a_run / "data").mkdir()
    (not_a_run / "data" / "x.csv").write_text("1,2\n")

    other_run = tmp / "other_run"
    open_run_dir(make_config(root_dir=str(other_run), fc_layers=[8]))

    corrupt_policy = tmp / "corrupt_policy"
    corrupt_policy.mkdir()
    (corrupt_policy / "saved_model.pb").write_bytes(b"\x08\xff\xff garbage \x00\x13" * 20)
    (corrupt_policy / "env.json").write_text(json.dumps({"env": "CartPole-v1"}))

    cases = {
        "unknown_env": [TRAIN, "--env=NoSuchEnvironment-v0", f"--root_dir={paths['unknown_env']}"],
        "foreign_flag": [
            TRAIN,
            "--agent=sac",
            "--env=Pendulum-v1",
            "--epsilon_start=0.5",
            f"--root_dir={paths['foreign_flag']}",
        ],
        "not_a_run": [TRAIN, f"--root_dir={not_a_run}", *SMALL[1:]],
        # Only --fc_layers differs from the run already in other_run.
        "other_run": [TRAIN, f"--root_dir={other_run}", "--fc_layers=16"],
        "eval_missing": [EVALUATE, f"--policy_dir={tmp / 'no_such_policy'}"],
        "eval_corrupt": [EVALUATE, f"--policy_dir={corrupt_policy}"],
    }
    before = {
        "not_a_run": snapshot(not_a_run),
        "other_run": snapshot(other_run),
        "corrupt_policy": snapshot(corrupt_policy),
    }
    # One process per core: more at once only makes their TensorFlow imports contend.
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        runs = pool.map(lambda argv: binaries.run(*argv, timeout=180), cases.values())
        outcomes = dict(zip(cases, runs, strict=True))
    return {
        "outcomes": outcomes,
        "paths": paths,
        "not_a_run": not_a_run,
        "other_run": other_run,
        "corrupt_policy": corrupt_policy,
        "before": before,
    }


def assert_user_error(outcome: subprocess.CompletedProcess, *fragments: str) -> None:
    assert outcome.returncode == 2, outcome.stderr
    assert "Traceback" not in outcome.stderr, outcome.stderr
    assert last_line(outcome).startswith("error:"), outcome.stderr
    for fragment in fragments:
        assert fragment in last_line(outcome), last_line(outcome)
    assert "run dir:" not in outcome.stdout  # training never started


@pytest.mark.parametrize(
    "name, fragments",
    [
        ("unknown_env", ["NoSuchEnvironment"]),
        (
            "foreign_flag",
            ["--epsilon_start does not apply to --agent=sac", "--alpha_learning_rate"],
        ),
    ],
)
def test_train_rejects_bad_input_before_creating_the_root_dir(cli, name, fragments):
    assert_user_error(cli["outcomes"][name], *fragments)
    assert not cli["paths"][name].exists()


def test_train_rejects_a_non_empty_directory_that_is_not_a_run(cli):
    assert_user_error(cli["outcomes"]["not_a_run"], "holds no tfa_suite run", CONFIG_FILE)
    # Nothing was added, removed or changed.
    assert snapshot(cli["not_a_run"]) == cli["before"]["not_a_run"]


def test_train_refuses_a_run_with_a_different_config(cli):
    assert_user_error(
        cli["outcomes"]["other_run"], "different configuration", "fc_layers", "[8]", "[16]"
    )
    assert "replay_capacity" not in last_line(cli["outcomes"]["other_run"])  # only the real diff
    assert snapshot(cli["other_run"]) == cli["before"]["other_run"]
    saved = json.loads((cli["other_run"] / CONFIG_FILE).read_text())
    assert saved["agent"]["fc_layers"] == [8]


def test_evaluate_rejects_a_missing_policy_dir(cli):
    assert_user_error(cli["outcomes"]["eval_missing"], "does not exist", "no_such_policy")


def test_a_directory_that_is_not_a_policy_is_refused(tmp_path):
    from tfa_suite.policy.saved import SavedPolicy

    (tmp_path / "README").write_text("nothing here\n")
    with pytest.raises(UserError, match="is not an exported tfa_suite policy"):
        SavedPolicy(str(tmp_path))
    assert snapshot(tmp_path) == {"README": b"nothing here\n"}


def test_evaluate_rejects_a_corrupt_policy(cli):
    assert_user_error(cli["outcomes"]["eval_corrupt"], "corrupt or unreadable")
    assert snapshot(cli["corrupt_policy"]) == cli["before"]["corrupt_policy"]


# --- in-process: open_run_dir ---------------------------------------------------------


def test_open_run_dir_creates_a_new_run(tmp_path):
    root = tmp_path / "new" / "run"
    config = make_config(root_dir=str(root), fc_layers=[8], seed=3)
    run, resuming = open_run_dir(config)
    assert resuming is False
    assert run.root == str(root)
    saved = json.loads((root / CONFIG_FILE).read_text())
    assert saved["agent"]["fc_layers"] == [8] and saved["run"]["seed"] == 3
    assert "--fc_layers=8\n" in (root / "flags.txt").read_text()
    # No leftovers: the config, and the lock this process holds until it releases the run.
    assert sorted(os.listdir(root)) == [".lock", "config.json", "flags.txt"]
    assert (root / ".lock").read_text() == f"{os.getpid()}\n"
    run.release()


def test_open_run_dir_accepts_an_empty_existing_directory(tmp_path):
    _, resuming = open_run_dir(make_config(root_dir=str(tmp_path)))
    assert resuming is False
    assert (tmp_path / CONFIG_FILE).is_file()


def test_open_run_dir_resumes_the_same_config(tmp_path):
    config = make_config(root_dir=str(tmp_path), fc_layers=[8])
    open_run_dir(config)
    _, resuming = open_run_dir(config)
    assert resuming is True


def test_open_run_dir_resumes_when_only_non_identity_fields_differ(tmp_path):
    open_run_dir(make_config(root_dir=str(tmp_path), fc_layers=[8], eval_interval=100))
    _, resuming = open_run_dir(
        make_config(root_dir=str(tmp_path), fc_layers=[8], eval_interval=50, num_env_steps=7)
    )
    assert resuming is True
    saved = json.loads((tmp_path / CONFIG_FILE).read_text())
    assert saved["run"]["eval_interval"] == 50 and saved["run"]["num_env_steps"] == 7


@pytest.mark.parametrize(
    "field, old, new",
    [
        ("fc_layers", [8], [16]),
        ("seed", 0, 1),
        ("env", "CartPole-v1", "MountainCar-v0"),
        ("env_kwargs", "", '{"sutton_barto_reward": true}'),
        ("double_dqn", False, True),
        ("n_step", 1, 3),
        ("num_envs", 1, 2),
        ("max_episode_steps", 0, 100),
        ("replay_capacity", 1000, 2000),
    ],
)
def test_open_run_dir_refuses_a_different_identity(tmp_path, field, old, new):
    base = {"root_dir": str(tmp_path), "collect_steps_per_iteration": 2}
    open_run_dir(make_config(**base, **{field: old}))
    before = snapshot(tmp_path)
    with pytest.raises(UserError) as info:
        open_run_dir(make_config(**base, **{field: new}))
    message = str(info.value)
    assert "different configuration" in message
    assert f"{field}: run has {old!r}, flags give {new!r}" in message
    assert "--flagfile=" in message  # the way out
    assert snapshot(tmp_path) == before


def test_open_run_dir_refuses_a_file(tmp_path):
    path = tmp_path / "file"
    path.write_text("keep me")
    with pytest.raises(UserError, match="is a file"):
        open_run_dir(make_config(root_dir=str(path)))
    assert path.read_text() == "keep me"


def test_open_run_dir_refuses_a_non_empty_non_run_directory(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="holds no tfa_suite run"):
        open_run_dir(make_config(root_dir=str(tmp_path)))
    assert snapshot(tmp_path) == {"notes.txt": b"mine"}


def test_open_run_dir_reports_an_unreadable_config(tmp_path):
    (tmp_path / CONFIG_FILE).write_text("{ not json")
    with pytest.raises(UserError, match="unreadable"):
        open_run_dir(make_config(root_dir=str(tmp_path)))
    assert (tmp_path / CONFIG_FILE).read_text() == "{ not json"


# --- in-process: train()'s checks before the root dir ---------------------------------


@pytest.mark.parametrize(
    "overrides, error, fragment",
    [
        ({"gamma": 2.0}, UserError, "--gamma must be in [0, 1]"),
        (
            {"collect_steps_per_iteration": 3, "num_envs": 2},
            UserError,
            "--collect_steps_per_iteration (3) must be a multiple of --num_envs (2)",
        ),
        (
            {"replay_capacity": 10, "batch_size": 64},
            UserError,
            "--replay_capacity (10) must be >= --batch_size (64)",
        ),
        (
            {"env": "no_such_module_xyz.envs:MyEnv"},
            UserError,
            "cannot import module 'no_such_module_xyz.envs'",
        ),
        ({"env": "NoSuchEnvironment-v0"}, UserError, "NoSuchEnvironment"),
        ({"env": "CartPole-v1", "env_kwargs": "{oops"}, UserError, "--env_kwargs"),
        ({"env": "CartPole-v1", "env_kwargs": '{"bad_kwarg": 1}'}, UserError, "bad_kwarg"),
        (
            {"env": "Pendulum-v1"},
            UnsupportedSpaceError,
            "--agent=dqn takes discrete actions, but Pendulum-v1 has continuous actions "
            "(float32 (1,)); agents for continuous actions: a2c, ddpg, ppo, reinforce, sac, td3",
        ),
        ({"env": "tests.envs_for_tests:DictObsEnv"}, UnsupportedSpaceError, "Dict("),
        ({"env": "MountainCar-v0", "backend": "graph"}, UserError, "--backend=graph"),
        (
            {"env": "CartPole-v1", "agent": "sac"},
            UnsupportedSpaceError,
            "--agent=sac takes continuous actions, but CartPole-v1 has discrete actions "
            "(int64 ()); agents for discrete actions: a2c, c51, dqn, ppo",
        ),
    ],
)
def test_train_rejects_bad_input_without_touching_the_root_dir(
    tmp_path, overrides, error, fragment
):
    from tfa_suite.run.train import train

    root = tmp_path / "run"
    layers = {"actor_layers": [8]} if overrides.get("agent") == "sac" else {"fc_layers": [8]}
    fields = {"replay_capacity": 1000, **layers, **overrides}
    config = make_config(root_dir=str(root), **fields)
    with pytest.raises(error) as info:
        train(config)
    assert fragment in str(info.value)
    assert not root.exists()


def test_train_refuses_a_root_dir_file_in_process(tmp_path):
    from tfa_suite.run.train import train

    path = tmp_path / "file"
    path.write_text("keep me")
    with pytest.raises(UserError, match="is a file"):
        train(make_config(root_dir=str(path), fc_layers=[8], replay_capacity=1000))
    assert path.read_text() == "keep me"


def test_train_rejects_a_negative_seed_as_a_user_error(tmp_path):
    from tfa_suite.run.train import train

    root = tmp_path / "run"
    with pytest.raises(UserError, match="--seed"):
        train(make_config(root_dir=str(root), seed=-1, fc_layers=[8], replay_capacity=1000))
    assert not root.exists()


def test_a_refused_space_is_named_in_one_short_line(tmp_path):
    # A Box of Atari frames printed with its bound arrays made this message ~90 lines.
    from tfa_suite.run.train import train

    config = make_config(agent="tabular_q", env="ALE/Pong-v5", root_dir=str(tmp_path / "r"))
    with pytest.raises(UnsupportedSpaceError) as info:
        train(config)
    message = str(info.value)
    assert "\n" not in message and len(message) < 300, message
    assert "uint8 [84, 84, 4]" in message
    assert not (tmp_path / "r").exists()
