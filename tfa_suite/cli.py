"""Shared plumbing for the absl binaries: user errors become one line and exit status 2."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from tfa_suite.errors import UserError
from tfa_suite.startup import import_tensorflow

EXIT_USER_ERROR = 2


def quiet_library_logs() -> None:
    """Keeps TensorFlow's and absl's INFO chatter (saver sharding, signature renames) out
    of the progress output; warnings and errors still show."""
    import logging
    import warnings

    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.ERROR)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    # PolicySaver's policy-info spec triggers a harmless "StructuredValue" UserWarning.
    warnings.filterwarnings("ignore", message="Encoding a StructuredValue")
    # tf-agents 0.19's CategoricalProjectionNetwork calls int() on a one-element array
    # (numpy 2.x deprecates it; 2.3 still allows it, see setup.cfg's numpy pin): one
    # warning on every discrete policy-gradient run, about code that is not ours.
    warnings.filterwarnings(
        "ignore",
        message="Conversion of an array with ndim > 0 to a scalar",
        category=DeprecationWarning,
        module="tf_agents.networks.categorical_projection_network",
    )


def run_main(main: Callable[[list[str]], Any]) -> Callable[[list[str]], Any]:
    """Wraps an absl main so a UserError prints `error: ...` instead of a traceback."""

    def wrapped(argv: list[str]) -> Any:
        import_tensorflow()  # a no-op if the binary's imports loaded it already
        quiet_library_logs()
        try:
            return main(argv)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr, flush=True)
            sys.exit(EXIT_USER_ERROR)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr, flush=True)
            sys.exit(130)

    return wrapped


def train_main(argv: list[str]) -> None:
    """The training binaries' main: flags -> config -> `tfa_suite.run.train.train`."""
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {' '.join(argv[1:])}; flags look like --name=value")
    from tfa_suite import flags as tfa_flags
    from tfa_suite.run.train import train

    result = train(tfa_flags.config_from_flags())
    if result.stopped_by_signal is not None:
        # 128 + signal number, as shells report a process ended by that signal.
        sys.exit(128 + result.stopped_by_signal)
