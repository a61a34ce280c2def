"""Errors shared by every stage. A :class:`DeblurrtError` reaches the user as one clear line and an exit code
(2 unless the error class says otherwise)."""


class DeblurrtError(Exception):
    """An error caused by the user's input or environment; its message says what is wrong and how to fix it."""

    #: the process exit code the CLI returns for this error
    exit_code: int = 2


class MissingDependencyError(DeblurrtError):
    """An optional library needed for the requested feature is not installed."""

    def __init__(self, package: str, feature: str, install_hint: str):
        super().__init__(f"{feature} needs '{package}', which is not installed. Fix: {install_hint}")
        self.package = package


class CheckpointError(DeblurrtError):
    """A checkpoint file is unreadable, truncated or does not match the model it describes."""


class UnknownModelError(DeblurrtError, KeyError):
    """A model name that is not in the zoo. Also a ``KeyError``, so lookups that catch one keep working."""

    def __str__(self) -> str:
        # KeyError quotes its message; this one is read by people
        return str(self.args[0]) if self.args else ""


class IncompleteInputError(DeblurrtError):
    """The work finished, but the input had corrupt frames or ended early and ``--strict`` asked for none."""

    exit_code = 1
