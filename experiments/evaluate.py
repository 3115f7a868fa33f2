"""Score an exported policy in a fresh process, and optionally film it.

    python experiments/evaluate.py --policy_dir=runs/CartPole-v1-dqn-seed0/policy \
        --episodes=10 --video=/tmp/cartpole.mp4

Needs only TensorFlow (with TensorFlow Probability), gymnasium and the environment: no
TF-Agents and no training code (`tfa_suite.policy`). The environment is rebuilt from
<policy_dir>/env.json.
"""

from absl import app, flags

import tfa_suite  # noqa: F401  (selects Keras 2 before TensorFlow is imported)
from tfa_suite.cli import run_main

flags.DEFINE_string(
    "policy_dir",
    None,
    "exported policy: <root_dir>/policy of a run (greedy), or <root_dir>/policy_sampled "
    "(a policy gradient's sampling policy, from --export_sampled_policy)",
)
flags.DEFINE_integer("episodes", 10, "number of episodes")
flags.DEFINE_integer("seed", 0, "episode i is reset with seed + i")
flags.DEFINE_string("video", "", "write an MP4 of the first --video_episodes episodes here")
flags.DEFINE_integer("video_episodes", 1, "episodes in the video")
flags.DEFINE_string(
    "json", "", "also write the per-episode returns, mean and std to this JSON file"
)
flags.DEFINE_bool("overwrite", False, "allow --video and --json to replace existing files")
flags.DEFINE_float(
    "sticky_actions", 0.0, "Atari: repeat-action probability (0.25 per Machado et al. 2018)"
)
flags.mark_flag_as_required("policy_dir")
FLAGS = flags.FLAGS


def check_flags(argv: list[str]) -> None:
    """Refuses bad values and output paths before the policy is loaded."""
    import os

    from tfa_suite.errors import UserError

    if len(argv) > 1:
        raise UserError(f"unexpected arguments {' '.join(argv[1:])}")
    if FLAGS.episodes < 1:
        raise UserError("--episodes must be >= 1")
    if FLAGS.seed < 0:
        raise UserError(f"--seed must be >= 0, not {FLAGS.seed}")
    if FLAGS.video_episodes < 1:
        raise UserError("--video_episodes must be >= 1")
    for name, suffix in (("video", ".mp4"), ("json", ".json")):
        path = getattr(FLAGS, name)
        if not path:
            continue
        if not path.lower().endswith(suffix):
            raise UserError(f"--{name} {path} must name a {suffix} file")
        if os.path.isdir(path):
            raise UserError(f"--{name} {path} is a directory; name a {suffix} file")
        if os.path.exists(path) and not FLAGS.overwrite:
            raise UserError(f"--{name} {path} exists; pass --overwrite to replace it")
        if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            raise UserError(f"--{name} {path}: its directory does not exist")
    if not 0.0 <= FLAGS.sticky_actions <= 1.0:
        raise UserError("--sticky_actions must be in [0, 1]")


def main(argv: list[str]) -> None:
    import json

    from tfa_suite.policy.handle import load_policy

    check_flags(argv)
    policy = load_policy(FLAGS.policy_dir)
    scores = policy.evaluate(FLAGS.episodes, seed=FLAGS.seed, sticky_actions=FLAGS.sticky_actions)
    print(
        f"{policy.env_spec.env}: return {scores.mean:.1f} ± {scores.std:.1f} over "
        f"{FLAGS.episodes} episodes (seeds {FLAGS.seed}..{FLAGS.seed + FLAGS.episodes - 1}, "
        f"policy at train step {policy.train_step:,})"
    )
    if FLAGS.json:
        record = {
            "env": policy.env_spec.env,
            "policy_dir": FLAGS.policy_dir,
            "policy_train_step": policy.train_step,
            "episodes": FLAGS.episodes,
            "seeds": [FLAGS.seed, FLAGS.seed + FLAGS.episodes - 1],
            "sticky_actions": FLAGS.sticky_actions,
            "returns": [float(r) for r in scores.returns],
            "mean": scores.mean,
            "std": scores.std,
        }
        with open(FLAGS.json, "w") as f:
            json.dump(record, f, indent=2)
        print(f"scores: {FLAGS.json}")
    if FLAGS.video:
        policy.video(
            FLAGS.video, FLAGS.video_episodes, seed=FLAGS.seed, overwrite=True,
            sticky_actions=FLAGS.sticky_actions,
        )  # fmt: skip
        print(f"video: {FLAGS.video}")


if __name__ == "__main__":
    app.run(run_main(main))
