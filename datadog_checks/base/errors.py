"""The exceptions checks raise, with upstream's hierarchy so ``except`` clauses keep working."""

from __future__ import annotations


class CheckException(Exception):
    """Base class of the errors a check raises on purpose."""


class ConfigurationError(CheckException):
    """The check's configuration cannot work; the message says which key and why."""


class ConfigTypeError(ConfigurationError):
    pass


class ConfigValueError(ConfigurationError):
    pass


class ConfigMissingError(ConfigurationError):
    pass


class ConfigNotSupportedError(ConfigurationError):
    pass


SKIP_INSTANCE_PREFIX = "The integration refused to load the check configuration"
"""The runner recognises this prefix and skips the instance quietly, as the Datadog Agent does."""


class SkipInstanceError(ConfigurationError):
    """Raise from ``__init__`` to tell the runner this instance is not for this host."""

    def __init__(self, message: str = "") -> None:
        text = SKIP_INSTANCE_PREFIX
        if message:
            text = f"{text}, it may be deprecated or not supported: {message}"
        super().__init__(text)
