"""Search spaces: what a study draws each field's value from, and the flag text of a value.

An agent declares its default space beside its config section (`SEARCH_SPACE`, reached
through `tfa_suite.catalog.search_space`); `--search_space=FIELD=...` adds a field or
replaces its range; a field given a value on the command line is fixed, not searched.
Ranges are `tfa_suite.config`'s FloatRange, IntRange and Choice; each is checked against
the field it names, so a space can only draw values the field's flag would accept.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tfa_suite import catalog
from tfa_suite.config import Choice, FloatRange, IntRange, SearchParam, need
from tfa_suite.errors import UserError

# Set by the study for each run: never searched (and --root_dir never given).
STUDY_FIELDS = ("agent", "env", "seed", "root_dir")


def _field_default(field: dataclasses.Field) -> Any:
    if field.default is dataclasses.MISSING:
        return field.default_factory()  # type: ignore[misc]
    return field.default


def _parse_option(text: str, name: str, field: dataclasses.Field) -> Any:
    """One choice of --search_space, typed as the field's default is."""
    default = _field_default(field)
    if isinstance(default, bool):
        if text.lower() not in ("true", "false"):
            raise ValueError(f"--{name} takes true or false, not {text!r}")
        return text.lower() == "true"
    if isinstance(default, list):
        kind = float if "float" in str(field.type) else int
        return [kind(v) for v in text.split(",") if v.strip()]
    if isinstance(default, int | float):
        return type(default)(text)
    return text


def parse_override(
    text: str, agent: str, fields: dict[str, dataclasses.Field]
) -> tuple[str, SearchParam]:
    """`FIELD=LOW:HIGH`, `FIELD=LOW:HIGH:log` or `FIELD=A|B|C` -> (field, its range);
    `fields` are the agent's, by name."""
    name, sep, spec = text.partition("=")
    name = name.strip().removeprefix("--")
    need(
        bool(sep and name and spec),
        f"--search_space={text}: write FIELD=LOW:HIGH, FIELD=LOW:HIGH:log or FIELD=A|B|C",
    )
    if name not in fields:
        raise UserError(f"--search_space={text}: {catalog.not_for_agent_message(agent, [name])}")
    default = _field_default(fields[name])
    try:
        if "|" in spec:
            return name, Choice(
                tuple(_parse_option(o, name, fields[name]) for o in spec.split("|"))
            )
        low, high, *rest = spec.split(":")
        need(rest in ([], ["log"]), f"--search_space={text}: the third part can only be log")
        if isinstance(default, int) and not isinstance(default, bool):
            return name, IntRange(int(low), int(high), log=bool(rest))
        if isinstance(default, float):
            return name, FloatRange(float(low), float(high), log=bool(rest))
        raise ValueError(f"--{name} is not a number: give its options as A|B|C")
    except ValueError as e:
        raise UserError(f"--search_space={text}: {e}") from None


def _fits(param: SearchParam, default: Any) -> bool:
    """Whether `param` draws values of the field's type (its default's)."""
    if isinstance(param, FloatRange):
        return isinstance(default, float)
    if isinstance(param, IntRange):
        return isinstance(default, int) and not isinstance(default, bool)
    return all(type(o) is type(default) for o in param.options)


def check_space(agent: str, space: dict[str, SearchParam]) -> None:
    """Refuses a search space naming a field `agent` does not take, one the study sets
    itself, or one whose range draws values of another type than the field's."""
    fields = {
        f.name: f for c in catalog.section_classes(agent).values() for f in dataclasses.fields(c)
    }
    foreign = sorted(name for name in space if name not in fields)
    if foreign:
        raise UserError(f"search space: {catalog.not_for_agent_message(agent, foreign)}")
    own = sorted(name for name in space if name in STUDY_FIELDS)
    need(not own, f"search space: {', '.join(own)} cannot be searched; the study sets them")
    for name, param in space.items():
        default = _field_default(fields[name])
        need(
            _fits(param, default),
            f"search space: --{name} takes {type(default).__name__} values, not {param}",
        )


def resolve_space(
    agent: str, overrides: tuple[str, ...], fixed: dict[str, Any]
) -> dict[str, SearchParam]:
    """The agent's declared space, changed by `overrides`, less the fields given (fixed)."""
    classes = catalog.section_classes(agent)  # refuses an unknown agent
    fields = {f.name: f for c in classes.values() for f in dataclasses.fields(c)}
    space = catalog.search_space(agent)
    space.update(parse_override(text, agent, fields) for text in overrides)
    check_space(agent, space)
    searched = {name: param for name, param in space.items() if name not in fixed}
    if not searched:
        why = "every field of its search space is given a value" if space else "it declares none"
        raise UserError(
            f"nothing to search for --agent={agent}: {why}; add fields with "
            "--search_space=FIELD=LOW:HIGH[:log] or FIELD=A|B|C"
        )
    return searched


# --- drawing values with Optuna, and writing them as flags ----------------------------------


def _label(option: Any) -> Any:
    """A choice as Optuna stores it: lists (layer sizes) as their flag text."""
    return ",".join(str(v) for v in option) if isinstance(option, list) else option


def suggest(trial: Any, space: dict[str, SearchParam]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, param in space.items():
        if isinstance(param, FloatRange):
            values[name] = trial.suggest_float(name, param.low, param.high, log=param.log)
        elif isinstance(param, IntRange):
            values[name] = trial.suggest_int(name, param.low, param.high, log=param.log)
        else:
            labels = [_label(o) for o in param.options]
            values[name] = param.options[labels.index(trial.suggest_categorical(name, labels))]
    return values


def decode(space: dict[str, SearchParam], params: dict[str, Any]) -> dict[str, Any]:
    """A stored trial's parameters as field values (choices of lists back to lists)."""
    values = dict(params)
    for name, param in space.items():
        if isinstance(param, Choice) and name in values:
            labels = [_label(o) for o in param.options]
            values[name] = param.options[labels.index(values[name])]
    return values


def flag_text(value: Any) -> str:
    """A value as a flagfile line holds it, exactly (floats by repr)."""
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, float):
        return repr(value)
    return str(value).lower() if isinstance(value, bool) else str(value)
