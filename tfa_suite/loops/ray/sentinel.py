"""A watcher process that says, in one line, why a learner died when its Ray node went.

When the raylet of the learner's node dies (killed, out of memory, or taken down with
Ray's dashboard agent, whose fate it shares), Ray's core worker in the learner logs
"the local Raylet is dead" to its session log file and exits the process at once with
status 1, with no Python exception, so nothing in the learner can report it: the user
saw only the exit status. This tiny process outlives the learner to say it.

The learner starts it with a pipe on its stdin and writes "done" there before a normal
shutdown (which also stops a local raylet). If the pipe closes without "done", the
learner ended abruptly; if the raylet's socket then refuses connections, the node is
gone, and this prints the line on the learner's stderr (which it inherits). A learner
killed by hand while its node lives gets no line here.

Run as a script (`python sentinel.py RAYLET_SOCKET`), it imports nothing of the suite or
TensorFlow, so it starts in milliseconds.
"""

from __future__ import annotations

import signal
import socket
import sys

NODE_LOST = (
    "error: the Ray node this run's learner ran on was lost (its raylet process ended: "
    "killed, or out of memory), which ended the run; rerunning the same command resumes "
    "from the run's last checkpoint"
)


def raylet_alive(socket_path: str) -> bool:
    """Whether the raylet accepts connections on its Unix socket, asked once: when the
    node is lost the raylet dies first and Ray then ends the learner, so it is already
    gone; when the learner dies first (killed by hand), a local raylet outlives it for a
    moment, and the learner's death is not reported as the node's."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(2.0)
        s.connect(socket_path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def watch(socket_path: str, stdin=None, stderr=None) -> bool:  # noqa: ANN001
    """Blocks until the learner says "done" or its pipe closes; True if the node was lost."""
    stdin = stdin if stdin is not None else sys.stdin
    stderr = stderr if stderr is not None else sys.stderr
    said = stdin.read()  # returns at EOF: a clean close or the learner's death
    if said.strip() == "done" or raylet_alive(socket_path):
        return False
    print(NODE_LOST, file=stderr, flush=True)
    return True


def main(argv: list[str]) -> int:
    # Ctrl-C reaches the whole process group; the learner handles it and then says "done".
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if len(argv) != 2:
        print("usage: sentinel.py RAYLET_SOCKET", file=sys.stderr)
        return 2
    watch(argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
