"""The one exception this package raises for bad configuration."""

from __future__ import annotations


class ConfigError(Exception):
    """A configuration problem, told to the user in one line.

    ``str(error)`` names where the bad value came from and the key, for example::

        /etc/sa/security-agent.yaml:12: security_agent.cmd_port: expected an integer, got 'abc'
        DD_HEALTH_PORT (environment): health_port: expected an integer, got 'abc'

    The host prints it as is and exits, so it never carries a traceback; plugins may raise it
    (see ``Config.value_error``) for values they reject themselves.
    """

    def __init__(self, message: str) -> None:
        # The message ends up on one log or terminal line; YAML problems and OS errors can carry
        # newlines, which would split it.
        super().__init__(" ".join(message.splitlines()))

    @property
    def message(self) -> str:
        """The one-line message, the same as ``str(error)``."""
        return str(self.args[0])
