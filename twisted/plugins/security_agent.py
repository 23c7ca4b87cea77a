"""twistd drop-in for ``twistd security-agent`` and ``twist security-agent``.

Kept import-cheap on purpose: ``ServiceMaker`` loads ``host.tap`` only when the subcommand
is used, and nothing here imports the reactor (that would break ``twistd --reactor``).
"""

from twisted.application.service import ServiceMaker

security_agent = ServiceMaker(  # type: ignore[no-untyped-call]
    "security-agent",
    "host.tap",
    "Run the security agent: compliance, runtime security and custom checks as plugins.",
    "security-agent",
)
