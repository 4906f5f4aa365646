"""The one exception type that reaches users as a one-line message (exit code 2)."""


class UserError(ValueError):
    """Bad input: the message says what was wrong and what to do."""
