"""The project's own error types.

Every problem a user can fix (a bad setting, a broken recording, a malformed
label file) is raised as a :class:`PipelineError` whose message names the file,
row or setting, what is wrong and what to do. The command-line programs and
stage scripts print the message and exit with status 1 instead of showing a
traceback (:func:`rainforest.cli.run_program`).
"""


class PipelineError(Exception):
    """Base class of errors caused by the user's data or settings."""


class ConfigError(PipelineError):
    """A value in ``params.yaml``, or a command-line option, is missing or invalid."""


class AudioError(PipelineError):
    """A recording cannot be found, read or decoded."""


class LabelError(PipelineError):
    """A label or submission CSV is malformed."""


class ModelError(PipelineError):
    """A model or detector file is missing, unreadable or does not match its use."""
