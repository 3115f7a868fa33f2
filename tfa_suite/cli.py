"""Shared plumbing for the absl binaries: user errors become one line and exit status 2."""

from __future__ import annotations

import sys
from collections.abc import Callable

from tfa_suite.errors import UserError

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


def run_main(main: Callable[[list[str]], None]) -> Callable[[list[str]], None]:
    """Wraps an absl main so a UserError prints `error: ...` instead of a traceback."""

    def wrapped(argv: list[str]) -> None:
        quiet_library_logs()
        try:
            main(argv)
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
