"""train(): a tiny real run leaves every output behind, resumes, and refuses to mix runs."""

import tfa_suite  # noqa: F401  isort: skip

import csv
import json
import os
import re
import shutil
import subprocess
import sys

import imageio.v2 as imageio
import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator
from tf_agents.trajectories import time_step as ts

from tfa_suite.config import EVAL_SEED_OFFSET
from tfa_suite.errors import UserError
from tfa_suite.policy.saved import SavedPolicy
from tfa_suite.run.train import build, resolve_config, train

# What this module's run needs beyond the tiny config: two updates per iteration on a bigger
# replay, an evaluation and a checkpoint every 200 steps, epsilon decayed and the target
# network updated within the run, and a video at the end.
RUN = dict(
    backend="python",
    initial_collect_steps=64,
    train_steps_per_iteration=2,
    replay_capacity=2_000,
    eval_interval=200,
    checkpoint_interval=200,
    epsilon_decay_steps=200,
    target_update_period=10,
    video_episodes=1,
)


def copy_of_run(root: str, tmp_path) -> str:
    """A copy of the shared run for a test that trains on or could change it."""
    copy = str(tmp_path / "copy")
    shutil.copytree(root, copy)
    return copy


def snapshot(root: str) -> dict[str, bytes]:
    """Every file under `root` with its bytes."""
    return {
        os.path.relpath(os.path.join(d, name), root): open(os.path.join(d, name), "rb").read()
        for d, _, names in os.walk(root)
        for name in names
    }


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny_config):
    """One finished run, shared read-only: a test that writes to a run works on a copy."""
    root = str(tmp_path_factory.mktemp("run") / "cartpole")
    return root, train(tiny_config(root, **RUN))


def test_run_writes_every_output(finished_run):
    root, result = finished_run
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
        assert os.path.isfile(os.path.join(root, name)), name
    assert any(f.startswith("ckpt-") for f in os.listdir(os.path.join(root, "checkpoints")))
    assert result.env_steps >= 400
    assert result.train_steps > 0
    with open(os.path.join(root, "config.json")) as f:
        assert json.load(f)["agent"]["fc_layers"] == [16]
    with open(os.path.join(root, "result.json")) as f:
        assert json.load(f)["env_steps"] == result.env_steps


def test_metrics_file_has_progress_and_eval_rows(finished_run):
    root, result = finished_run
    with open(os.path.join(root, "metrics.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    steps = [int(r["env_steps"]) for r in rows]
    assert steps == sorted(steps)
    progress = [r for r in rows if r["env_steps_per_sec"]]
    evals = [r for r in rows if r["eval_mean"]]
    assert progress and all(float(r["env_steps_per_sec"]) > 0 for r in progress)
    assert all(np.isfinite(float(r["loss"])) for r in progress)
    assert len(evals) == len(result.evaluations) >= 1
    assert float(evals[0]["eval_mean"]) == pytest.approx(result.evaluations[0]["mean"], rel=1e-5)


def test_summaries_hold_the_metrics_rows_and_evaluations(finished_run):
    root, result = finished_run
    acc = event_accumulator.EventAccumulator(os.path.join(root, "summaries"))
    acc.Reload()
    tags = set(acc.Tags()["tensors"])
    assert {"train/loss", "eval/mean_return", "perf/env_steps_per_sec"} <= tags

    def series(tag: str) -> list[tuple[int, float]]:
        return [(e.step, float(tf.make_ndarray(e.tensor_proto))) for e in acc.Tensors(tag)]

    # The same numbers as metrics.csv and the run's evaluations, at the same env steps.
    with open(os.path.join(root, "metrics.csv"), newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["loss"]]
    losses = series("train/loss")
    assert [step for step, _ in losses] == [int(r["env_steps"]) for r in rows]
    np.testing.assert_allclose([v for _, v in losses], [float(r["loss"]) for r in rows], rtol=1e-6)
    assert series("eval/mean_return") == [
        (e["env_steps"], pytest.approx(e["mean"], rel=1e-6)) for e in result.evaluations
    ]


def test_exported_policy_and_video_are_real(finished_run):
    root, result = finished_run
    policy = SavedPolicy(os.path.join(root, "policy"))
    obs = np.zeros((3, 4), np.float32)
    actions = policy(obs)
    assert actions.shape == (3,) and set(actions.tolist()) <= {0, 1}
    assert policy.train_step == result.train_steps
    frames = imageio.mimread(os.path.join(root, "video.mp4"), memtest=False)
    # One greedy episode: the first frame plus one per step, each an RGB image.
    assert len(frames) >= 9 and frames[0].ndim == 3 and frames[0].shape[2] == 3


def test_exported_policy_is_the_greedy_policy_of_the_final_checkpoint(finished_run, tiny_config):
    root, _ = finished_run
    config = resolve_config(tiny_config(root, **RUN))
    parts = build(config)  # writes nothing
    latest = tf.train.latest_checkpoint(os.path.join(root, "checkpoints"))
    status = tf.train.Checkpoint(agent=parts.agent).restore(latest).expect_partial()
    status.assert_existing_objects_matched()
    # The export holds the trained weights (this tiny run's policy acts the same almost
    # everywhere, so equal actions alone would prove little) ...
    trained = parts.built.greedy_policy.variables()
    saved = tf.saved_model.load(os.path.join(root, "policy")).model_variables
    assert len(saved) == len(trained) >= 4
    for a, b in zip(saved, trained, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # ... and acts greedily with them.
    observations = np.random.default_rng(0).normal(size=(256, 4)).astype(np.float32)
    time_step = ts.restart(tf.constant(observations), batch_size=256)
    greedy = parts.built.greedy_policy.action(time_step).action.numpy()
    np.testing.assert_array_equal(SavedPolicy(os.path.join(root, "policy"))(observations), greedy)


def test_rerun_resumes_from_checkpoint_and_extends(finished_run, tmp_path, tiny_config, capsys):
    original, first = finished_run
    root = copy_of_run(original, tmp_path)
    second = train(tiny_config(root, **{**RUN, "num_env_steps": 600}))
    assert second.resumed_from_env_steps == first.env_steps
    assert second.env_steps >= 600
    assert second.train_steps > first.train_steps
    with open(os.path.join(root, "metrics.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    steps = [int(r["env_steps"]) for r in rows]
    assert steps == sorted(steps), "resumed metrics must not repeat or go backwards"
    # wall_seconds restarts with the new process; total_wall_seconds goes on.
    totals = [float(r["total_wall_seconds"]) for r in rows]
    assert totals == sorted(totals)
    # The second segment's clock restarts: its rows' wall_seconds leave out the whole first
    # segment, which total_wall_seconds carries. (Comparing neighbouring wall_seconds
    # depended on how long each segment took to reach its first row.)
    earlier = [r for r in rows if int(r["env_steps"]) <= first.env_steps]
    later = [r for r in rows if int(r["env_steps"]) > first.env_steps]
    assert earlier and later
    for r in earlier:
        assert float(r["total_wall_seconds"]) == pytest.approx(float(r["wall_seconds"]), abs=0.01)
    first_total = float(earlier[-1]["total_wall_seconds"])
    for r in later:
        carried = float(r["total_wall_seconds"]) - float(r["wall_seconds"])
        assert carried >= first_total - 0.01, "the second segment's clock restarts"
    assert second.total_wall_seconds > second.wall_seconds
    assert second.total_wall_seconds >= totals[-1]  # then the export and its score
    assert "over every segment of the run" in capsys.readouterr().out


def test_incompatible_rerun_is_refused_and_leaves_run_untouched(
    finished_run, tmp_path, tiny_config
):
    root = copy_of_run(finished_run[0], tmp_path)
    before = snapshot(root)
    with pytest.raises(UserError, match="different configuration.*fc_layers"):
        train(tiny_config(root, **{**RUN, "fc_layers": [32]}))
    assert snapshot(root) == before


def test_same_seed_gives_identical_metrics(tmp_path, tiny_config):
    fields = {**RUN, "video_episodes": 0, "num_env_steps": 300}
    a = train(tiny_config(tmp_path / "a", **fields))
    b = train(tiny_config(tmp_path / "b", **fields))
    assert a.evaluations == b.evaluations
    assert a.final_eval_mean == b.final_eval_mean
    losses = []
    for run in ("a", "b"):
        with open(tmp_path / run / "metrics.csv", newline="") as f:
            losses.append([r["loss"] for r in csv.DictReader(f) if r["loss"]])
    assert losses[0] == losses[1] and losses[0]


def test_env_without_rgb_frames_trains_and_skips_the_video(tmp_path, capsys, tiny_config):
    config = tiny_config(
        tmp_path / "run",
        **{
            **RUN,
            "env": "tests.envs_for_tests:make_truncated_env",
            "env_kwargs": '{"limit": 20}',
            "num_env_steps": 200,
            "eval_interval": 100,
        },
    )
    result = train(config)
    assert "note: no video.mp4" in capsys.readouterr().out
    assert not os.path.exists(os.path.join(result.root_dir, "video.mp4"))
    assert os.path.exists(os.path.join(result.root_dir, "result.json"))


def test_evaluation_side_imports_no_tf_agents():
    # evaluate.py's promise: a saved policy is scored with TensorFlow and gymnasium alone.
    code = (
        "import sys, tfa_suite.policy.saved, tfa_suite.policy.episodes, tfa_suite.envs; "
        "sys.exit('tf_agents' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0


def test_evaluate_binary_reproduces_the_run_in_a_fresh_process(finished_run, tmp_path, binaries):
    root, result = finished_run
    video = tmp_path / "eval.mp4"
    scores = tmp_path / "eval.json"
    proc = binaries.run(
        "experiments/evaluate.py",
        f"--policy_dir={os.path.join(root, 'policy')}",
        "--episodes=2",
        f"--seed={EVAL_SEED_OFFSET}",
        f"--video={video}",
        f"--json={scores}",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    match = re.search(r"return (-?[\d.]+) ± ([\d.]+) over 2 episodes", proc.stdout)
    assert match, proc.stdout
    # The final evaluation of the run used the same seeds on the same exported policy.
    assert float(match.group(1)) == pytest.approx(result.final_eval_mean, abs=0.05)
    assert len(imageio.mimread(str(video), memtest=False)) >= 9
    record = json.loads(scores.read_text())
    assert len(record["returns"]) == 2
    assert record["seeds"] == [EVAL_SEED_OFFSET, EVAL_SEED_OFFSET + 1]
    assert record["mean"] == pytest.approx(sum(record["returns"]) / 2)
    assert f"{record['mean']:.1f}" == match.group(1)


@pytest.mark.parametrize(
    "flag, name, fragment",
    [
        ("--json", "mine.json", "exists; pass --overwrite"),
        ("--json", "scores.txt", "must name a .json file"),
        ("--video", "clip.gif", "must name a .mp4 file"),
        ("--video", "mine.mp4", "exists; pass --overwrite"),
    ],
)
def test_evaluate_refuses_output_paths_without_touching_them(
    finished_run, tmp_path, binaries, flag, name, fragment
):
    root, _ = finished_run
    target = tmp_path / name
    target.write_text("the user's own file\n")
    proc = binaries.run(
        "experiments/evaluate.py",
        f"--policy_dir={os.path.join(root, 'policy')}",
        "--episodes=1",
        f"{flag}={target}",
    )
    assert proc.returncode != 0
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and fragment in errors[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert target.read_text() == "the user's own file\n"


def test_export_run_copies_the_curve_and_sums_resumed_segments(finished_run, tmp_path, binaries):
    root, result = finished_run
    out = tmp_path / "exported"
    proc = binaries.run("benchmarks/export_run.py", f"--root_dir={root}", f"--out={out}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (out / "metrics.csv").read_text() == open(os.path.join(root, "metrics.csv")).read()
    assert (out / "learning_curve.png").stat().st_size > 0
    assert (out / "result.json").read_text() == open(os.path.join(root, "result.json")).read()
    summary = json.loads((out / "summary.json").read_text())
    with open(os.path.join(root, "metrics.csv"), newline="") as f:
        last = list(csv.DictReader(f))[-1]
    assert summary["env_steps"] == int(last["env_steps"]) == result.env_steps
    assert summary["training_wall_seconds"] > 0
    # The default command resumes this very run: the run dir's flags name all of it.
    assert summary["command"] == f"python experiments/train.py --flagfile={root}/flags.txt"

    sys.path.insert(0, str(binaries.repo / "benchmarks"))
    try:
        from export_run import first_reaching, wall_seconds
    finally:
        sys.path.pop(0)
    # wall_seconds restarts at each resume; NaN cells (evaluation-only rows) are skipped.
    rows = [{"wall_seconds": s} for s in (0.5, 1.0, float("nan"), 2.0, 0.25, 1.5)]
    assert wall_seconds(rows) == 3.5
    # The first evaluation at the target, timed across the resume: 2.0 s, then 1.0 s.
    nan = float("nan")
    evals = [(10, 1.0, 5.0), (20, 2.0, nan), (30, 0.5, 17.0), (40, 1.0, 18.5), (50, 1.5, 19.0)]
    rows = [dict(env_steps=e, wall_seconds=s, eval_mean=m) for e, s, m in evals]
    assert first_reaching(rows, 18.0) == {
        "target": 18.0,
        "env_steps": 40,
        "eval_mean": 18.5,
        "training_wall_seconds": 3.0,
    }
    assert first_reaching(rows, 20.0) is None
    assert "first_reached" not in summary  # the tiny run set no --target_return

    # Several targets (break-even and a goal): the highest is first_reached, each by name.
    proc = binaries.run(
        "benchmarks/export_run.py", f"--root_dir={root}", f"--out={out}", "--target=-1000",
        "--target=1e9",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["exported_with"].endswith("--target=-1000 --target=1e+09")
    assert summary["first_reached"] is None
    first_eval = summary["evaluations"][0]
    assert summary["first_reached_by_target"]["-1000"]["env_steps"] == first_eval["env_steps"]
    assert summary["first_reached_by_target"]["1e+09"] is None
