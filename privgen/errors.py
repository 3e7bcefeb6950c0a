"""The one exception type that a stage turns into a one-line message for the user."""


class PrivgenError(Exception):
    """Bad input or settings: the message names the value and what to do instead."""
