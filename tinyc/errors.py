"""Error classes. Each says what kind of failure happened, so the CLI can map it to an exit code.

Exit codes (the contract of DESIGN.md): 0 ok, 1 a check failed, 2 bad input or usage.
"""


class TinycError(Exception):
    """Base class: a failure we understand and can explain in one line."""

    exit_code = 2


class BadInput(TinycError):
    """The user gave us something we cannot use: corrupt model, unknown board, bad flag."""

    exit_code = 2


class UnsupportedError(BadInput):
    """The model is valid but uses an op, dtype or attribute tinyc does not implement."""


class CheckFailed(TinycError):
    """The command ran, and what it checked was false (mismatch, does not fit under --strict)."""

    exit_code = 1


class InternalError(TinycError):
    """A compiler invariant broke (IR lint, planner verifier): a tinyc bug, never the user's."""

    exit_code = 3
