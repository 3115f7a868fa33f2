"""The one description of a training run: typed dataclass sections whose field docs become flags.

A run's configuration has three or four sections:

- `run` (`RunConfig`, here): what every run has, whatever the agent: env, seed, root dir,
  length, evaluation, checkpoints and reporting.
- `loop` (a `LoopSection`): the data flow of the agent's loop kind, e.g. `ReplayConfig`
  in `tfa_suite.loops.replay` (capacity, batch, collection and updates per iteration).
- `ray`: for loops that scale out, `RayConfig` in `tfa_suite.loops.ray.config`.
- `agent`: owned by the agent's module, e.g. `DqnConfig` in `tfa_suite.agents.dqn`.

This module holds the types alone. Which sections an agent has is resolved one layer up,
in `tfa_suite.catalog` (`make_config(agent=..., **flat_fields)`), which knows the agents
and the loops. `experiments/train.py` turns every field of every section into one flat
absl flag (`tfa_suite.flags`); a flag that belongs to no section of the chosen agent is
refused. Every run saves the resolved sections to `<root_dir>/config.json`. Every count
is in environment steps (summed over the parallel environments), so a schedule means the
same whatever `num_envs` is.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from typing import Any, ClassVar

from tfa_suite.errors import UserError
from tfa_suite.precision import check_supported

# Seeds of evaluation episodes sit far from training seeds, so evaluation starts are
# never the training env's own starts. Pure Python here, so benchmarks and peers' scripts
# read it without importing TensorFlow.
EVAL_SEED_OFFSET = 1_000_003


def _field(default: Any, help: str, **extra: Any) -> Any:
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata={"help": help})
    return dataclasses.field(default=default, metadata={"help": help, **extra})


def need(ok: bool, message: str) -> None:
    """Raises a UserError with `message` unless `ok`: the validators' one-line refusal."""
    if not ok:
        raise UserError(message)


# --- search spaces: the ranges experiments/tune.py draws a field's value from ------------


def _check_range(low: float, high: float, log: bool) -> None:
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"a range needs finite low < high, not {low}..{high}")
    if log and low <= 0:
        raise ValueError(f"a log range needs low > 0, not {low}")


@dataclasses.dataclass(frozen=True)
class FloatRange:
    """A float field drawn from [low, high]; `log`: uniformly in log space (rates, scales)."""

    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        _check_range(self.low, self.high, self.log)


@dataclasses.dataclass(frozen=True)
class IntRange:
    """An int field drawn from [low, high]; `log`: uniformly in log space (step counts)."""

    low: int
    high: int
    log: bool = False

    def __post_init__(self) -> None:
        if not (isinstance(self.low, int) and isinstance(self.high, int)):
            raise ValueError(f"an int range needs integer ends, not {self.low}..{self.high}")
        _check_range(self.low, self.high, self.log)


@dataclasses.dataclass(frozen=True)
class Choice:
    """A field drawn from a few values: categories, layer sizes, or numbers whose useful
    values are a short list (gamma)."""

    options: tuple[Any, ...]

    def __post_init__(self) -> None:
        if len(self.options) < 2:
            raise ValueError("a choice needs at least two options")


SearchParam = FloatRange | IntRange | Choice


@dataclasses.dataclass
class Section:
    """A group of settings; its fields are flags, its `validate` their checks.

    `RESUMABLE` names the fields a rerun may change when it resumes a run (how long, how
    often, where to report). Every other field defines the experiment itself, so a root dir
    whose run differs in any of them is refused rather than resumed: the checkpoint would
    not fit, or one curve would silently mix two experiments.

    `SEARCH_SPACE`, on an agent's section, is what `experiments/tune.py` searches for that
    agent by default: field name -> range, over the fields of any of the agent's sections
    (its own, its loop's, the run's), declared beside the fields themselves. A subclass
    inherits its parent's unless it declares its own; empty: nothing to search by default.
    """

    RESUMABLE: ClassVar[frozenset[str]] = frozenset()
    SEARCH_SPACE: ClassVar[dict[str, SearchParam]] = {}

    def validate(self, run: RunConfig) -> None:
        """Rejects out-of-range values with one message naming the flag."""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]


@dataclasses.dataclass
class RunConfig(Section):
    # --- where and what ---
    agent: str = _field("dqn", "agent name (see the agents table in README.md)")
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
    num_envs: int = _field(1, "environments stepped in parallel")
    mixed_precision: str = _field(
        "off",
        "off, or bf16: matmuls and convolutions in bfloat16 via oneDNN's graph rewrite "
        "(CPUs with AVX512-BF16/AMX; weights stay float32)",
    )
    # --- length, evaluation, outputs ---
    num_env_steps: int = _field(100_000, "training length in env steps")
    max_train_minutes: float = _field(
        0.0,
        "also stop after this many minutes of the run's wall time, summed over resumed "
        "segments (metrics.csv's total_wall_seconds); 0 is no limit. The run then ends as at "
        "--num_env_steps: export, evaluation, video",
    )
    eval_interval: int = _field(5_000, "env steps between greedy evaluations; 0 is off")
    eval_episodes: int = _field(10, "episodes per greedy evaluation")
    eval_max_episode_steps: int = _field(
        27_000,
        "longest evaluation episode in env steps; longer ones are cut and counted "
        "(27,000 = Atari's 108,000 frames at frame skip 4)",
    )
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
    metrics_interval: int = _field(
        2_000, "env steps between metrics.csv rows and summaries (also the longest compiled call)"
    )
    log_interval_seconds: float = _field(5.0, "seconds between progress lines on the terminal")
    video_episodes: int = _field(1, "greedy episodes recorded to video.mp4 at the end; 0 is off")

    RESUMABLE: ClassVar[frozenset[str]] = frozenset(
        {
            "root_dir",
            "num_env_steps",
            "max_train_minutes",
            "eval_interval",
            "eval_episodes",
            "eval_max_episode_steps",
            "eval_sticky_actions",
            "stop_at_threshold",
            "target_return",
            "checkpoint_interval",
            "metrics_interval",
            "log_interval_seconds",
            "video_episodes",
        }
    )

    @property
    def eval_seed(self) -> int:
        """Seed of the first evaluation episode; episode i is reset with eval_seed + i."""
        return self.seed + EVAL_SEED_OFFSET

    def validate(self, run: RunConfig) -> None:
        need(bool(self.env.strip()), "--env must not be empty")
        need(0 <= self.seed < 2**31, f"--seed must be in [0, 2**31), not {self.seed}")
        need(self.backend in ("auto", "python", "graph"), "--backend must be auto, python or graph")
        check_supported(self.mixed_precision)
        need(self.num_envs >= 1, "--num_envs must be >= 1")
        need(self.max_episode_steps >= 0, "--max_episode_steps must be >= 0")
        need(self.num_env_steps >= 1, "--num_env_steps must be >= 1")
        need(
            math.isfinite(self.max_train_minutes) and self.max_train_minutes >= 0,
            f"--max_train_minutes must be >= 0 (0 is no limit), not {self.max_train_minutes}",
        )
        need(self.eval_interval >= 0, "--eval_interval must be >= 0 (0 is off)")
        need(self.eval_episodes >= 1, "--eval_episodes must be >= 1")
        need(self.eval_max_episode_steps >= 1, "--eval_max_episode_steps must be >= 1")
        need(0.0 <= self.eval_sticky_actions <= 1.0, "--eval_sticky_actions must be in [0, 1]")
        need(self.checkpoint_interval >= 1, "--checkpoint_interval must be >= 1")
        need(self.metrics_interval >= 1, "--metrics_interval must be >= 1")
        need(self.log_interval_seconds > 0, "--log_interval_seconds must be > 0")
        need(self.video_episodes >= 0, "--video_episodes must be >= 0")


@dataclasses.dataclass
class LoopSection(Section):
    """The section of a loop kind: how data flows from the environment to the train step.

    `KIND` names the loop kind (`tfa_suite.catalog.LOOPS`); an agent names the kind it
    trains on, and a flag of another kind's section is refused for it.
    """

    KIND: ClassVar[str] = ""

    def steps_before_training(self) -> int:
        """Env steps collected with the agent's initial-collect policy before training."""
        return 0


@dataclasses.dataclass
class TrainConfig:
    """A resolved run: the shared run section, the agent's loop and agent sections, and
    for loops that can scale out, the Ray section (`tfa_suite.loops.ray.config`)."""

    run: RunConfig
    loop: LoopSection
    agent: Section
    ray: Section | None = None

    def sections(self) -> dict[str, Section]:
        """Every section by name, in flag order: run, loop, ray (if any), agent."""
        named: dict[str, Section | None] = {
            "run": self.run,
            "loop": self.loop,
            "ray": self.ray,
            "agent": self.agent,
        }
        return {name: section for name, section in named.items() if section is not None}

    def section_classes(self) -> dict[str, type[Section]]:
        return {name: type(section) for name, section in self.sections().items()}

    def flat(self) -> dict[str, Any]:
        """Every field of every section by its flag name."""
        return {k: v for s in self.sections().values() for k, v in s.to_json().items()}

    def replace(self, **flat: Any) -> TrainConfig:
        """A copy with fields changed by flag name, in whichever section holds them.

        The agent stays: another agent has other sections (`tfa_suite.catalog.make_config`
        builds those). A field no section has is refused as the flags are.
        """
        if flat.get("agent", self.run.agent) != self.run.agent:
            raise ValueError("replace() keeps the agent; build another with catalog.make_config")
        owner = {name: key for key, s in self.sections().items() for name in s.field_names()}
        foreign = sorted(name for name in flat if name not in owner)
        if foreign:
            raise UserError(not_for_agent_message(self.run.agent, self.section_classes(), foreign))
        changed = {
            key: dataclasses.replace(section, **{k: v for k, v in flat.items() if owner[k] == key})
            for key, section in self.sections().items()
        }
        return TrainConfig(**changed)

    def to_json(self) -> dict[str, Any]:
        """config.json's layout: run, loop and agent. The Ray fields sit inside "loop", as
        they have since scale-out landed, so the file reads the same to old and new code."""
        data = {
            "run": self.run.to_json(),
            "loop": self.loop.to_json(),
            "agent": self.agent.to_json(),
        }
        if self.ray is not None:
            data["loop"].update(self.ray.to_json())
        return data

    def save(self, path: str) -> None:
        with open(path, "w") as f:
            json.dump(strict_json(self.to_json()), f, indent=2, sort_keys=True, allow_nan=False)
            f.write("\n")

    def default_root_dir(self) -> str:
        env_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.run.env.split(":")[-1]).strip("_")
        return f"runs/{env_name}-{self.run.agent}-seed{self.run.seed}"


def not_for_agent_message(agent: str, classes: dict[str, type[Section]], names: list[str]) -> str:
    """The one-line refusal of flags that no section of `agent` (`classes`) has."""
    loop = classes["loop"]
    kind = loop.KIND if isinstance(loop, type) and issubclass(loop, LoopSection) else "?"
    own = [key for key in ("agent", "loop", "ray") if key in classes]
    takes = [f"--{n}" for key in own for n in classes[key].field_names()]
    flags = ", ".join(f"--{n}" for n in names)
    return (
        f"{flags} {'does' if len(names) == 1 else 'do'} not apply to --agent={agent} "
        f"({kind} loop); its own flags are {', '.join(takes)}"
    )


def strict_json(value: Any) -> Any:
    """`value` with every NaN float as None (JSON's null): strict JSON has no NaN, and
    config.json's unset targets (--target_return, --target_entropy) are NaN."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict_json(v) for v in value]
    return value


def flatten_saved(data: dict[str, Any]) -> dict[str, Any]:
    """A saved config.json as {field: value}: sectioned, or one flat object from before.

    null is a NaN written as strict JSON (no section field is ever None); config.json files
    from before wrote NaN itself, which Python's json reads as NaN too.
    """
    if isinstance(data.get("run"), dict):
        flat = {k: v for part in data.values() if isinstance(part, dict) for k, v in part.items()}
    else:
        flat = dict(data)
    return {k: math.nan if v is None else v for k, v in flat.items()}


def identity_fields(config: TrainConfig) -> list[tuple[str, str]]:
    """(section, field) pairs that define the experiment: those a resume must match."""
    return [
        (key, name)
        for key, section in config.sections().items()
        for name in section.field_names()
        if name not in section.RESUMABLE
    ]


def validate(config: TrainConfig) -> None:
    """Rejects out-of-range or inconsistent values with one message naming the flag."""
    for section in config.sections().values():
        check_finite(section)
        section.validate(config.run)


def check_finite(section: Section) -> None:
    """No float field may be infinite, and only those whose default is NaN ("unset": take
    the env's threshold, the action dimensions, the single-process ratio) may be NaN."""
    for field in dataclasses.fields(section):
        value = getattr(section, field.name)
        if not isinstance(value, float) or math.isfinite(value):
            continue
        default = field.default
        unset_allowed = isinstance(default, float) and math.isnan(default)
        if math.isinf(value):
            way_out = "; leave it unset (NaN) for its default" if unset_allowed else ""
            raise UserError(f"--{field.name} must be a finite number, not {value}{way_out}")
        if not unset_allowed:
            raise UserError(f"--{field.name} must be a number, not nan")


def same_value(a: object, b: object) -> bool:
    """Equality in which NaN equals NaN (JSON keeps NaN as NaN, and NaN != NaN)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def describe(config: TrainConfig) -> str:
    """A flagfile-style listing of the resolved values, as saved beside every run."""
    lines = []
    for name, value in config.flat().items():
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        elif isinstance(value, float) and math.isnan(value):
            value = "nan"
        lines.append(f"--{name}={value}")
    return "\n".join(lines) + "\n"


def parse_layers(name: str, values: list[int], allow_empty: bool = False) -> tuple[int, ...]:
    """Checks a list-of-sizes flag such as --fc_layers."""
    need(allow_empty or len(values) > 0, f"--{name} needs at least one layer size")
    need(all(n > 0 for n in values), f"--{name} sizes must be > 0: {values}")
    return tuple(values)


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
