"""The one exception type that the CLI turns into a one-line message and exit code 2."""


class MorrisError(Exception):
    """Bad input or an unusable environment: the message says what was wrong and how to fix it."""


class NotBuiltYet(MorrisError):
    """A command whose implementation has not landed yet."""
