"""Every flagfile in experiments/configs parses into a valid configuration."""

import tfa_suite  # noqa: F401  isort: skip

import pathlib

import pytest

from tfa_suite.config import validate
from tfa_suite.flags import config_from_flagfile

CONFIGS = sorted(
    (pathlib.Path(__file__).resolve().parents[2] / "experiments/configs").glob("*.cfg")
)


def test_the_configs_are_found():
    assert len(CONFIGS) >= 10


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_config_is_valid(path):
    config = config_from_flagfile(str(path))
    validate(config)  # raises a UserError naming the bad flag
    assert config.run.env and config.run.agent
