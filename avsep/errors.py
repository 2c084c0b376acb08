"""The error a user can fix by changing their inputs or config."""


class InputError(Exception):
    """Bad input or config. Rule scripts report it as one clear message, without a traceback."""
