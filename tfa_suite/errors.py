"""Errors that are the user's to fix, reported as one line without a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input: flags, environment, root dir or policy dir.

    The binaries print `error: <message>` and exit with status 2, so the message must
    name the problem and, where there is one, the way out.
    """


class UnsupportedSpaceError(UserError):
    """A gymnasium space that tfa_suite cannot map to TF-Agents specs, or an agent cannot use."""


class EnvironmentFailed(UserError):
    """The user's environment raised while being stepped, reset or rendered."""
