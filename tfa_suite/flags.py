"""absl flags generated from the config sections, so defaults and help text live in one place.

Every field of every registered section (the run section, each loop's and each agent's)
becomes one flat flag. When two agents give a field of the same name different defaults
(`--target_update_tau` is 1.0 for DQN and 0.005 for SAC), the flag's own default is None
and the chosen agent's dataclass default applies. A flag set on the command line or in a
`--flagfile` that no section of the chosen agent has is refused with one line.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from absl import flags

from tfa_suite import catalog
from tfa_suite.config import TrainConfig, same_value
from tfa_suite.errors import UserError


def _default(field: dataclasses.Field) -> Any:
    if field.default is dataclasses.MISSING:
        return field.default_factory()  # type: ignore[misc]
    return field.default


def all_section_fields() -> dict[str, list[tuple[str, dataclasses.Field]]]:
    """Flag name -> [(owner, field)] over every registered agent's sections."""
    by_name: dict[str, list[tuple[str, dataclasses.Field]]] = {}
    seen: set[type] = set()
    for agent in catalog.agent_names():
        for cls in catalog.section_classes(agent).values():
            if cls in seen:
                continue
            seen.add(cls)
            for field in dataclasses.fields(cls):
                by_name.setdefault(field.name, []).append((cls.__name__, field))
    return by_name


def _same(a: Any, b: Any) -> bool:
    # The type matters too: one flag cannot have an int default and a float one.
    return type(a) is type(b) and same_value(a, b)


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines one absl flag per section field, typed after the field's default."""
    for name, owners in all_section_fields().items():
        defaults = [_default(f) for _, f in owners]
        kinds = {type(d) for d in defaults}
        if len(kinds) != 1:
            raise TypeError(f"config field {name!r} has different types across sections: {kinds}")
        sample = defaults[0]
        agree = all(_same(d, sample) for d in defaults)
        help_text = owners[0][1].metadata.get("help", name)
        if not agree:
            per = "; ".join(f"{owner}: {d}" for (owner, _), d in zip(owners, defaults))
            help_text = f"{help_text} (default by section: {per})"
        default = sample if agree else None
        if isinstance(sample, bool):
            flags.DEFINE_bool(name, default, help_text, flag_values=flag_values)
        elif isinstance(sample, int):
            flags.DEFINE_integer(name, default, help_text, flag_values=flag_values)
        elif isinstance(sample, float):
            flags.DEFINE_float(name, default, help_text, flag_values=flag_values)
        elif isinstance(sample, list):
            default = None if default is None else [str(v) for v in default]
            flags.DEFINE_list(name, default, help_text, flag_values=flag_values)
        else:
            flags.DEFINE_string(name, default, help_text, flag_values=flag_values)


def _coerce_list(name: str, values: list[str], field: dataclasses.Field) -> list[int] | list[float]:
    # The annotation is a string under `from __future__ import annotations`.
    kind, words = (float, "numbers") if "float" in str(field.type) else (int, "integers")
    try:
        return [kind(v) for v in values if v.strip()]
    except ValueError:
        raise UserError(
            f"--{name} must be comma-separated {words}, got {','.join(values)}"
        ) from None


def given_fields(flag_values: flags.FlagValues = flags.FLAGS) -> dict[str, Any]:
    """The fields set on the command line or in a flagfile, typed as the sections type them."""
    names = all_section_fields()
    values: dict[str, Any] = {}
    for name in names:
        if not flag_values[name].present:
            continue
        value = flag_values[name].value
        if isinstance(value, list):
            value = _coerce_list(name, value, names[name][0][1])
        values[name] = value
    return values


def config_from_flags(flag_values: flags.FlagValues = flags.FLAGS) -> TrainConfig:
    """Builds the config from parsed flags; refuses flags the chosen agent does not take."""
    agent = flag_values["agent"].value
    if agent not in catalog.agent_names():
        raise UserError(catalog.unknown_agent_message(agent))
    values = given_fields(flag_values)
    mine = {n for cls in catalog.section_classes(agent).values() for n in cls.field_names()}
    foreign = [n for n in values if n not in mine]
    if foreign:
        raise UserError(catalog.not_for_agent_message(agent, foreign))
    values["agent"] = agent
    return catalog.make_config(**values)


def flagfile_fields(path: str) -> dict[str, Any]:
    """The fields a flagfile sets (and only those), as a binary would read them."""
    import os

    if not os.path.isfile(path):
        raise UserError(f"flagfile {path} does not exist")
    flag_values = flags.FlagValues()
    define_flags(flag_values)
    try:
        flag_values(["flagfile_fields", f"--flagfile={path}"])
    except flags.Error as e:
        raise UserError(f"flagfile {path}: {e}") from None
    return given_fields(flag_values)


def config_from_flagfile(path: str, **overrides: Any) -> TrainConfig:
    """The config a binary would build from `--flagfile=path`, with field overrides.

    Lets tests and benchmarks run exactly the shipped configs without a subprocess.
    """
    flag_values = flags.FlagValues()
    define_flags(flag_values)
    flag_values(["config_from_flagfile", f"--flagfile={path}"])
    return config_from_flags(flag_values).replace(**overrides)


HELP_FLAGS = ("-h", "--help", "--helpshort", "-?")
SECTION_TITLES = {
    "run": "run (every agent)",
    "loop": "loop ({kind} loop)",
    "ray": "ray (collection in Ray actor processes, --num_actors > 0)",
    "agent": "agent ({agent})",
}


def agent_help(agent: str) -> str:
    """The chosen agent's flags by section, with their defaults and help: what --help shows
    (--helpfull adds absl's own flags and every other agent's)."""
    from tfa_suite.config import LoopSection

    classes = catalog.section_classes(agent)
    loop = classes["loop"]
    kind = loop.KIND if issubclass(loop, LoopSection) else "?"
    lines = [
        f"Flags of --agent={agent} ({kind} loop), by config section. Other agents: "
        f"{', '.join(a for a in catalog.agent_names() if a != agent)} (--agent=NAME --help); "
        "--helpfull lists every flag, absl's included.",
    ]
    for key, cls in classes.items():
        lines += ["", SECTION_TITLES[key].format(kind=kind, agent=agent) + ":"]
        for field in dataclasses.fields(cls):
            default = _default(field)
            if isinstance(default, list):
                default = ",".join(str(v) for v in default)
            text = field.metadata.get("help", "")
            lines.append(f"  --{field.name}  (default: {default!s})\n      {text}")
    return "\n".join(lines)


def help_requested(argv: list[str]) -> str | None:
    """The agent-aware help text if `argv` asks for --help (or -h, --helpshort), else None.

    The agent is the one the rest of `argv` (and a --flagfile in it) chooses."""
    if not any(arg in HELP_FLAGS for arg in argv[1:]):
        return None
    rest = [arg for arg in argv[1:] if arg not in HELP_FLAGS]
    flag_values = flags.FlagValues()
    define_flags(flag_values)
    try:
        flag_values([argv[0], *rest], known_only=True)
        agent = flag_values["agent"].value
    except flags.Error as e:
        raise UserError(str(e)) from None
    if agent not in catalog.agent_names():
        raise UserError(catalog.unknown_agent_message(agent))
    return agent_help(agent)
