"""Starting Ray for the actors: the import, the local instance or cluster, what workers need.

Nothing here imports Ray until a function is called, so the suite runs without it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import subprocess
import sys
from typing import Any

from tfa_suite.errors import UserError
from tfa_suite.loops.ray.config import INSTALL_HINT


def import_ray():  # noqa: ANN201
    try:
        import ray
    except ImportError:
        raise UserError(f"--num_actors needs Ray, which is not installed; {INSTALL_HINT}") from None
    return ray


def worker_env_vars() -> dict[str, str]:
    """What every worker process needs in its environment, through Ray's `runtime_env`.

    Keras 2 must be chosen before TensorFlow loads, and a worker must import this package
    and whatever the learner can (a user's `--env=my_pkg.my_mod:MyEnv` from the current
    directory), so the package's parent, the current directory and PYTHONPATH go first on
    its path. On a cluster, every node needs the same stack at the same path.
    """
    # tfa_suite/loops/ray/runtime.py -> the folder that holds tfa_suite/
    here = os.path.abspath(__file__)
    package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(here))))
    paths = [
        package_parent,
        os.getcwd(),
        *filter(None, os.environ.get("PYTHONPATH", "").split(":")),
    ]
    return {
        "TF_USE_LEGACY_KERAS": "1",
        "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
        "PYTHONPATH": ":".join(dict.fromkeys(paths)),
    }


def init_ray(address: str = "", num_cpus: int | None = None) -> bool:
    """Starts a local Ray (or joins `address`) unless one is up; True if this call did it.

    - Ray 2.60 turns on token authentication for the clusters it starts and writes the
      token to ~/.ray/auth_token; a local, single-user instance needs none
      (`RAY_AUTH_MODE=disabled`, unless the user chose a mode). Joining a cluster keeps
      the cluster's mode.
    - `log_to_driver=False`: every worker's TensorFlow start-up lines would otherwise be
      copied into the learner's progress output; they stay in Ray's session logs.
    - A local Ray gets at least as many logical CPUs as actors, since each actor reserves
      one: on a 2-core machine, 8 latency-bound actors still all start.
    """
    ray = import_ray()
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = dict(
        runtime_env={"env_vars": worker_env_vars()},
        log_to_driver=False,
        logging_level=logging.WARNING,
    )
    try:
        if address:
            ray.init(address=address, **kwargs)
        else:
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")
            cpus = max(os.cpu_count() or 1, num_cpus or 0)
            ray.init(num_cpus=cpus, include_dashboard=False, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as e:
        where = f"the Ray cluster at --ray_address={address}" if address else "a local Ray"
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"could not start or join {where}: {first}") from None
    _quiet_worker_deaths(ray)
    return True


def _quiet_worker_deaths(ray) -> None:  # noqa: ANN001
    """Drops the raylet's paragraph about a dead worker from the learner's output.

    The pool reports each failed actor in one line and replaces it; Ray's driver prints
    its own long notice of the same death from a thread that `log_to_driver=False` does
    not silence. This filters only those notices (other raylet messages still print),
    through Ray's module-level printer; if a later Ray renames it, nothing is filtered.
    """
    worker_module = getattr(getattr(ray, "_private", None), "worker", None)
    printer = getattr(worker_module, "print_to_stdstream", None)
    if printer is None or getattr(printer, "_tfa_filtered", False):
        return

    def filtered(data, ignore_prefix):  # noqa: ANN001, ANN202
        if data.get("pid") == "raylet" and any(
            "worker died or was killed" in line for line in data.get("lines", [])
        ):
            return None
        return printer(data, ignore_prefix)

    filtered._tfa_filtered = True
    worker_module.print_to_stdstream = filtered


def failure_line(error: BaseException) -> str:
    """One line for an exception raised while stepping: the env's own message if any.

    A Python env runs inside `py_function`, so its exception reaches us as a TensorFlow
    error with the traced graph's stack attached; the last `SomethingError: ...` line is
    the env's own message.
    """
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    if not lines:
        return type(error).__name__
    cause = next(
        (ln for ln in reversed(lines) if re.match(r"^[A-Za-z_.]+(Error|Exception):", ln)),
        None,
    )
    return cause or f"{type(error).__name__}: {lines[-1]}"


def failure_reason(ray, error: BaseException) -> str:  # noqa: ANN001
    """One line for a failed Ray call: the env's message, or how the process ended."""
    if isinstance(error, ray.exceptions.RayTaskError):
        cause = getattr(error, "cause", None)
        if cause is not None and not isinstance(cause, ray.exceptions.RayError):
            text = str(cause).strip().splitlines()
            return text[0] if text else type(cause).__name__
    if isinstance(error, ray.exceptions.RayActorError):
        if getattr(error, "actor_init_failed", False):
            return f"it failed to start: {failure_line(error)}"
        return "its process died (killed, or out of memory)"
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    return f"{type(error).__name__}: {lines[-1] if lines else ''}".rstrip(": ")


@dataclasses.dataclass
class Sentinel:
    """The learner's end of `sentinel.py`, the process that reports a lost Ray node.

    Started once Ray is up; `stand_down()` before a normal shutdown. Where the raylet's
    socket is not known (a Ray without the attribute), no sentinel runs.
    """

    process: subprocess.Popen

    @classmethod
    def start(cls, ray) -> Sentinel | None:  # noqa: ANN001
        node = getattr(getattr(ray, "_private", None), "worker", None)
        node = getattr(getattr(node, "global_worker", None), "node", None)
        socket_path = getattr(node, "raylet_socket_name", None)
        if not socket_path:
            return None
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sentinel.py")
        process = subprocess.Popen(
            [sys.executable, "-I", script, socket_path],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        return cls(process)

    def stand_down(self) -> None:
        try:
            self.process.stdin.write("done\n")
            self.process.stdin.close()
            self.process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
