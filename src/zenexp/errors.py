"""The one exception type for mistakes a user can fix."""


class UserError(Exception):
    """A mistake in the config or the environment; the CLI prints it as one line, without a traceback."""
