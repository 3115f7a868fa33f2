"""The one description of a training run: a typed dataclass whose field docs become flags.

`experiments/train_dqn.py` turns every field into an absl flag (`tfa_suite.flags`), the
tests and benchmarks build `TrainConfig(...)` directly, and every run saves the resolved
values to `<root_dir>/config.json`. Every count is in environment steps (summed over the
parallel environments), so the schedule means the same whatever `num_envs` is.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

from tfa_suite.errors import UserError
from tfa_suite.precision import check_supported


def _field(default: Any, help: str, **extra: Any) -> Any:
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata={"help": help})
    return dataclasses.field(default=default, metadata={"help": help, **extra})


@dataclasses.dataclass
class TrainConfig:
    # --- where and what ---
    env: str = _field(
        "CartPole-v1",
        "gymnasium id (CartPole-v1) or import path of an env class or factory (pkg.mod:MyEnv)",
    )
    env_kwargs: str = _field("", 'JSON object of keyword arguments for the env, e.g. {"g": 9.8}')
    max_episode_steps: int = _field(0, "time limit per episode; 0 keeps the env's own")
    root_dir: str = _field("", "run directory; default runs/<env>-<agent>-seed<seed>")
    seed: int = _field(0, "seed for TensorFlow, the environments and the replay sampling")
    backend: str = _field(
        "auto",
        "auto: compiled TF environment when the env has one, else python; "
        "python: gymnasium env stepped from the graph; graph: require a TF environment",
    )
    agent: str = _field("dqn", "agent: dqn, or c51 (categorical DQN, Bellemare et al. 2017)")
    # --- network and loss ---
    conv_layers: str = _field(
        "",
        "convolutions for image observations as filters:kernel:stride,...; "
        "nature = 32:8:4,64:4:2,64:3:1 (Mnih et al. 2015)",
    )
    fc_layers: list[int] = _field([256, 256], "hidden layer sizes of the Q-network")
    optimizer: str = _field("adam", "adam, or rmsprop (centered, as in Mnih et al. 2015)")
    optimizer_epsilon: float = _field(1e-7, "epsilon of the optimizer's denominator")
    mixed_precision: str = _field(
        "off",
        "off, or bf16: matmuls and convolutions in bfloat16 via oneDNN's graph rewrite "
        "(CPUs with AVX512-BF16/AMX; weights stay float32)",
    )
    num_atoms: int = _field(51, "c51: atoms of the return distribution")
    min_q_value: float = _field(-10.0, "c51: lowest atom")
    max_q_value: float = _field(10.0, "c51: highest atom")
    learning_rate: float = _field(1e-3, "Adam learning rate")
    gamma: float = _field(0.99, "discount factor")
    n_step: int = _field(1, "n-step TD targets")
    double_dqn: bool = _field(False, "double DQN targets (van Hasselt et al. 2016)")
    loss: str = _field("huber", "TD loss: huber or squared")
    gradient_clipping: float = _field(0.0, "clip gradients to this global norm; 0 is off")
    target_update_period: int = _field(1000, "train steps between target network updates")
    target_update_tau: float = _field(1.0, "target update weight; 1 copies, < 1 is Polyak")
    # --- exploration ---
    epsilon_start: float = _field(1.0, "epsilon-greedy epsilon at env step 0")
    epsilon_end: float = _field(0.05, "epsilon after the decay")
    epsilon_decay_steps: int = _field(10_000, "env steps of linear decay from start to end")
    # --- data ---
    num_envs: int = _field(1, "environments stepped in parallel")
    replay_capacity: int = _field(100_000, "replay buffer capacity in transitions")
    batch_size: int = _field(64, "train batch size")
    initial_collect_steps: int = _field(1_000, "env steps of uniform-random collection first")
    collect_steps_per_iteration: int = _field(1, "env steps collected per iteration")
    train_steps_per_iteration: int = _field(1, "gradient steps per iteration")
    # --- length, evaluation, outputs ---
    num_env_steps: int = _field(100_000, "training length in env steps")
    eval_interval: int = _field(5_000, "env steps between greedy evaluations; 0 is off")
    eval_episodes: int = _field(10, "episodes per greedy evaluation")
    eval_sticky_actions: float = _field(
        0.0, "Atari: repeat-action probability in evaluation (0.25 per Machado et al. 2018)"
    )
    stop_at_threshold: bool = _field(
        True, "stop when the mean eval return reaches the target (--target_return)"
    )
    target_return: float = _field(
        float("nan"), "solve threshold; NaN takes the env's registered reward_threshold"
    )
    checkpoint_interval: int = _field(20_000, "env steps between checkpoints")
    checkpoint_replay: bool = _field(
        True, "include the replay buffer in checkpoints (turn off for memory-heavy runs)"
    )
    metrics_interval: int = _field(
        2_000, "env steps between metrics.csv rows and summaries (also the longest compiled call)"
    )
    log_interval_seconds: float = _field(5.0, "seconds between progress lines on the terminal")
    video_episodes: int = _field(1, "greedy episodes recorded to video.mp4 at the end; 0 is off")

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: str) -> None:
        with open(path, "w") as f:
            json.dump(self.to_json(), f, indent=2, sort_keys=True)
            f.write("\n")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def default_root_dir(self) -> str:
        env_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.env.split(":")[-1]).strip("_")
        return f"runs/{env_name}-{self.agent}-seed{self.seed}"


# Fields a rerun may change when it resumes a run: how long, how often and where to
# report. Every other field defines the experiment itself (env, network, learning
# hyperparameters, what the checkpoint holds), so a root dir whose run differs in any of
# them is refused rather than resumed: the checkpoint would not fit, or one curve would
# silently mix two experiments.
RESUMABLE_FIELDS = frozenset(
    {
        "root_dir",
        "num_env_steps",
        "eval_interval",
        "eval_episodes",
        "eval_sticky_actions",
        "stop_at_threshold",
        "target_return",
        "checkpoint_interval",
        "metrics_interval",
        "log_interval_seconds",
        "video_episodes",
    }
)


def identity_fields() -> list[str]:
    return [f.name for f in dataclasses.fields(TrainConfig) if f.name not in RESUMABLE_FIELDS]


def parse_conv_layers(text: str) -> list[tuple[int, int, int]]:
    """'32:8:4,64:4:2' -> [(32, 8, 4), (64, 4, 2)]; 'nature' is Mnih et al. 2015's stack."""
    text = text.strip()
    if text == "nature":
        text = "32:8:4,64:4:2,64:3:1"
    if not text:
        return []
    layers = []
    for part in text.split(","):
        try:
            filters, kernel, stride = (int(v) for v in part.split(":"))
        except ValueError:
            raise UserError(
                f"--conv_layers must be filters:kernel:stride,... (or nature), got {text!r}"
            ) from None
        if min(filters, kernel, stride) < 1:
            raise UserError(f"--conv_layers values must be >= 1, got {part!r}")
        layers.append((filters, kernel, stride))
    return layers


def validate(config: TrainConfig) -> None:
    """Rejects out-of-range or inconsistent values with one message naming the flag."""

    def need(ok: bool, message: str) -> None:
        if not ok:
            raise UserError(message)

    need(bool(config.env.strip()), "--env must not be empty")
    need(0 <= config.seed < 2**31, f"--seed must be in [0, 2**31), not {config.seed}")
    need(config.backend in ("auto", "python", "graph"), "--backend must be auto, python or graph")
    need(
        config.loss in ("huber", "squared"), f"--loss must be huber or squared, not {config.loss!r}"
    )
    need(len(config.fc_layers) > 0, "--fc_layers needs at least one layer size")
    parse_conv_layers(config.conv_layers)  # raises a UserError naming --conv_layers
    need(config.optimizer in ("adam", "rmsprop"), "--optimizer must be adam or rmsprop")
    need(config.optimizer_epsilon > 0, "--optimizer_epsilon must be > 0")
    check_supported(config.mixed_precision)
    need(config.num_atoms >= 2, "--num_atoms must be >= 2")
    need(config.min_q_value < config.max_q_value, "--min_q_value must be < --max_q_value")
    need(
        not (config.agent == "c51" and config.double_dqn),
        "--double_dqn applies to --agent=dqn only: C51 (TF-Agents' CategoricalDqnAgent) has "
        "no double-DQN target",
    )
    need(all(n > 0 for n in config.fc_layers), f"--fc_layers sizes must be > 0: {config.fc_layers}")
    need(config.learning_rate > 0, "--learning_rate must be > 0")
    need(0.0 <= config.gamma <= 1.0, "--gamma must be in [0, 1]")
    need(config.n_step >= 1, "--n_step must be >= 1")
    need(config.gradient_clipping >= 0, "--gradient_clipping must be >= 0 (0 is off)")
    need(config.target_update_period >= 1, "--target_update_period must be >= 1")
    need(0.0 < config.target_update_tau <= 1.0, "--target_update_tau must be in (0, 1]")
    for name in ("epsilon_start", "epsilon_end"):
        need(0.0 <= getattr(config, name) <= 1.0, f"--{name} must be in [0, 1]")
    need(config.epsilon_decay_steps >= 0, "--epsilon_decay_steps must be >= 0")
    need(config.num_envs >= 1, "--num_envs must be >= 1")
    need(config.batch_size >= 1, "--batch_size must be >= 1")
    need(config.max_episode_steps >= 0, "--max_episode_steps must be >= 0")
    need(config.initial_collect_steps >= 0, "--initial_collect_steps must be >= 0")
    need(config.collect_steps_per_iteration >= 1, "--collect_steps_per_iteration must be >= 1")
    need(config.train_steps_per_iteration >= 0, "--train_steps_per_iteration must be >= 0")
    need(config.num_env_steps >= 1, "--num_env_steps must be >= 1")
    need(config.eval_interval >= 0, "--eval_interval must be >= 0 (0 is off)")
    need(config.eval_episodes >= 1, "--eval_episodes must be >= 1")
    need(0.0 <= config.eval_sticky_actions <= 1.0, "--eval_sticky_actions must be in [0, 1]")
    need(config.checkpoint_interval >= 1, "--checkpoint_interval must be >= 1")
    need(config.metrics_interval >= 1, "--metrics_interval must be >= 1")
    need(config.log_interval_seconds > 0, "--log_interval_seconds must be > 0")
    need(config.video_episodes >= 0, "--video_episodes must be >= 0")
    need(
        config.replay_capacity >= config.num_envs * (config.n_step + 1),
        f"--replay_capacity {config.replay_capacity} is too small for --num_envs "
        f"{config.num_envs} and --n_step {config.n_step}",
    )
    need(
        config.collect_steps_per_iteration % config.num_envs == 0,
        f"--collect_steps_per_iteration ({config.collect_steps_per_iteration}) must be a "
        f"multiple of --num_envs ({config.num_envs}): each iteration steps every env equally",
    )
    need(
        config.initial_collect_steps >= config.num_envs * (config.n_step + 1)
        or config.train_steps_per_iteration == 0,
        f"--initial_collect_steps ({config.initial_collect_steps}) must give every one of the "
        f"{config.num_envs} envs at least --n_step + 1 = {config.n_step + 1} steps before "
        "the first sample",
    )
    need(
        config.initial_collect_steps >= config.batch_size or config.train_steps_per_iteration == 0,
        f"--initial_collect_steps ({config.initial_collect_steps}) must be >= --batch_size "
        f"({config.batch_size}) so the first train step has a full batch to sample",
    )
