"""Building a flare: a zip of everything support needs, with secrets scrubbed.

A library package (no entry point), used by the IPC API (``POST /agent/flare``) and by the
CLI when the agent cannot be reached (``local=True``)::

    path = yield agent.workers.defer(create_archive, agent)

Plugins add their own files through the ``security_agent_flare`` hook; see
:func:`create_archive` for what else is collected.
"""

from __future__ import annotations

from plugins.flare.archive import (
    ARCHIVE_MODE,
    ERRORS_FILE,
    FLARE_DIR_MODE,
    LOCAL_MARKER,
    archive_stem,
    create_archive,
)
from plugins.flare.upload import FlareUploadError, send_flare

__all__ = [
    "ARCHIVE_MODE",
    "ERRORS_FILE",
    "FLARE_DIR_MODE",
    "LOCAL_MARKER",
    "FlareUploadError",
    "archive_stem",
    "create_archive",
    "send_flare",
]
