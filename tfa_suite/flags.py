"""absl flags generated from `TrainConfig`, so defaults and help text live in one place."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from absl import flags

from tfa_suite.config import TrainConfig


def define_flags(
    config_cls: type = TrainConfig, flag_values: flags.FlagValues = flags.FLAGS
) -> None:
    """Defines one absl flag per dataclass field, typed after the field's default."""
    for field in dataclasses.fields(config_cls):
        default = (
            field.default_factory()  # type: ignore[misc]
            if field.default is dataclasses.MISSING
            else field.default
        )
        help_text = field.metadata.get("help", field.name)
        if isinstance(default, bool):
            flags.DEFINE_bool(field.name, default, help_text, flag_values=flag_values)
        elif isinstance(default, int):
            flags.DEFINE_integer(field.name, default, help_text, flag_values=flag_values)
        elif isinstance(default, float):
            flags.DEFINE_float(field.name, default, help_text, flag_values=flag_values)
        elif isinstance(default, list):
            flags.DEFINE_list(
                field.name, [str(v) for v in default], help_text, flag_values=flag_values
            )
        else:
            flags.DEFINE_string(field.name, default, help_text, flag_values=flag_values)


def _coerce_list(name: str, values: list[str]) -> list[int]:
    from tfa_suite.errors import UserError

    try:
        return [int(v) for v in values if v.strip()]
    except ValueError:
        raise UserError(
            f"--{name} must be comma-separated integers, got {','.join(values)}"
        ) from None


def config_from_flags(
    config_cls: type = TrainConfig, flag_values: flags.FlagValues = flags.FLAGS
) -> Any:
    """Builds the config from parsed flags."""
    values: dict[str, Any] = {}
    for field in dataclasses.fields(config_cls):
        value = flag_values[field.name].value
        if isinstance(value, list):
            value = _coerce_list(field.name, value)
        values[field.name] = value
    return config_cls(**values)


def describe(config: Any) -> str:
    """A flagfile-style listing of the resolved values, as saved beside every run."""
    lines = []
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        elif isinstance(value, float) and math.isnan(value):
            value = "nan"
        lines.append(f"--{field.name}={value}")
    return "\n".join(lines) + "\n"


def config_from_flagfile(path: str, config_cls: type = TrainConfig, **overrides: Any) -> Any:
    """The config a binary would build from `--flagfile=path`, with field overrides.

    Lets tests and benchmarks run exactly the shipped configs without a subprocess.
    """
    flag_values = flags.FlagValues()
    define_flags(config_cls, flag_values)
    flag_values(["config_from_flagfile", f"--flagfile={path}"])
    return dataclasses.replace(config_from_flags(config_cls, flag_values), **overrides)
