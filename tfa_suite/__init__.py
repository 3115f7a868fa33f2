"""tfa_suite: reinforcement-learning agents on TF-Agents that install today, train fast and
leave real results behind.

    import tfa_suite
    result = tfa_suite.train(agent="dqn", env="CartPole-v1", num_env_steps=20_000)
    policy = tfa_suite.load_policy(result.root_dir)

`train` and `load_policy` come from `tfa_suite.api`, imported on first use, so importing
the package itself stays instant and imports no TensorFlow.

Importing this package selects the Keras 2 API (tf-keras) for TensorFlow. TF-Agents 0.19 is
written against Keras 2, and TensorFlow >= 2.16 picks Keras 3 unless TF_USE_LEGACY_KERAS=1
is set *before* TensorFlow is first imported, so this must run before anything imports it.
Every `tfa_suite.<module>` import runs it first.
"""

import os
import sys

__version__ = "0.1.0"

if "tensorflow" in sys.modules and os.environ.get("TF_USE_LEGACY_KERAS") != "1":
    raise ImportError(
        "tensorflow was imported before tfa_suite without TF_USE_LEGACY_KERAS=1; "
        "import tfa_suite first or export TF_USE_LEGACY_KERAS=1"
    )
os.environ["TF_USE_LEGACY_KERAS"] = "1"
# TensorFlow's C++ start-up chatter (oneDNN notices, CPU feature banners) buries the
# progress output; errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

_API = ("train", "load_policy", "make_config", "RunResult", "Policy", "Evaluation")


def __getattr__(name: str):  # noqa: ANN202
    if name in _API:
        from tfa_suite import api

        return getattr(api, name)
    raise AttributeError(f"module 'tfa_suite' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
