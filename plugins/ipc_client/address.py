"""Where the command API listens: ``cmd_host``/``ipc_address`` and ``security_agent.cmd_port``.

The API hands out the configuration and can stop the agent, so it only ever listens on the
loopback interface; anything else is a configuration error that stops the start.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from twisted.logger import Logger

from host.config import get_port

if TYPE_CHECKING:
    from host.config import Config

log = Logger(namespace="ipc_api")

DEPRECATED_KEY = "ipc_address"
HOST_KEY = "cmd_host"
PORT_KEY = "security_agent.cmd_port"


@dataclass(frozen=True)
class ListenAddress:
    """The validated address: ``interface`` is what the socket binds, ``client_host`` what
    clients dial (``localhost`` binds and dials ``127.0.0.1``, the name the certificate also
    holds)."""

    interface: str
    port: int

    @property
    def client_host(self) -> str:
        return self.interface


def ipc_host(config: Config, *, warn: bool = True) -> tuple[str, str]:
    """The configured address and the key it came from; ``ipc_address`` wins but warns."""
    if config.is_set(DEPRECATED_KEY) and config.get_str(DEPRECATED_KEY):
        if warn:
            log.warn("ipc_address is deprecated, use cmd_host instead")
        return DEPRECATED_KEY, config.get_str(DEPRECATED_KEY)
    return HOST_KEY, config.get_str(HOST_KEY)


def loopback_interface(key: str, value: str) -> str:
    """The interface to bind for ``value``; ``ValueError`` with the reference's message when
    it is not ``localhost`` or a loopback IP."""
    if value == "localhost":
        return "127.0.0.1"
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{key}: address was set to an invalid IP address: {value}") from None
    if not ip.is_loopback:
        raise ValueError(f"{key}: address was set to a non-loopback IP address: {value}")
    return str(ip)


def listen_address(config: Config, *, warn: bool = True) -> ListenAddress:
    """Read and validate where the API listens (``ConfigError``/``ValueError`` when wrong).

    Port 0 asks the kernel for a free port; the agent logs the one it got. Clients cannot
    guess it, so it is only useful for tests.
    """
    key, value = ipc_host(config, warn=warn)
    interface = loopback_interface(key, value)
    port = get_port(config, PORT_KEY, allow_zero=True)
    return ListenAddress(interface=interface, port=port)
