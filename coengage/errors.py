"""Errors a user can act on. The CLI prints them without a traceback and exits non-zero."""


class CoengageError(Exception):
    """A problem with the user's input or artifacts, explained in the message."""


class InputError(CoengageError):
    """Bad input data: names the file, row or column, and what was expected."""


class ArtifactError(CoengageError):
    """A missing, stale, foreign or corrupt artifact directory."""
