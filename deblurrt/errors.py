"""Errors shared by every stage. A :class:`DeblurrtError` reaches the user as one clear line and exit code 2."""


class DeblurrtError(Exception):
    """An error caused by the user's input or environment; its message says what is wrong and how to fix it."""


class MissingDependencyError(DeblurrtError):
    """An optional library needed for the requested feature is not installed."""

    def __init__(self, package: str, feature: str, install_hint: str):
        super().__init__(f"{feature} needs '{package}', which is not installed. Fix: {install_hint}")
        self.package = package


class CheckpointError(DeblurrtError):
    """A checkpoint file is unreadable, truncated or does not match the model it describes."""
