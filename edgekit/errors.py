"""The user-error exception.

A ``UserError`` is a mistake the user can fix (a missing file, a bad flag, a model the
target cannot run). The CLI prints it as one line on stderr and exits 2, with no
traceback. Anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A mistake the user can fix. ``hint`` says what to do."""

    exit_code = 2

    def __init__(self, message, hint=None):
        super(UserError, self).__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self):
        text = self.message.strip().rstrip(". ")
        if self.hint:
            hint = self.hint.rstrip(". ")
            text += ". " + hint[:1].upper() + hint[1:]
        text = " ".join(text.split())
        return text + "."

    def __str__(self):
        return self.one_line()


class ConfigError(UserError):
    """A bad configuration value (YAML key, CLI flag, recipe field)."""


class DatasetError(UserError):
    """A dataset that cannot be used as given."""


class ModelError(UserError):
    """A model file that is missing, corrupt, or lacks what the command needs."""


class MetadataError(ModelError):
    """The ``edgekit`` metadata block is missing or invalid."""


class BackendUnavailable(UserError):
    """A runner's library is not installed on this machine."""


class PrecisionError(UserError):
    """A precision the target cannot run (for example INT8 on a Jetson Nano)."""


class ExportError(UserError):
    """A model that cannot be exported as asked."""


class ParityError(ExportError):
    """Exported outputs differ from the reference beyond tolerance.

    ``failures`` lists every failing output, not only the first.
    """

    def __init__(self, message, failures=None, hint=None):
        super(ParityError, self).__init__(message, hint=hint)
        self.failures = list(failures or [])


class LintError(UserError):
    """The target's TensorRT would reject the model (raised with ``--strict``)."""


class BundleError(UserError):
    """A bundle that is corrupt, tampered with, incomplete or for another target."""


class NotBuiltYet(UserError):
    """A command that exists in the CLI but is not implemented yet."""
