"""``tagger``: the host's tagger module (or the stub), and upstream's list of generic tags."""

from __future__ import annotations

from datadog_checks.base.agent import tagger

GENERIC_TAGS = frozenset(
    {
        "cluster_name",
        "clustername",
        "cluster",
        "clusterid",
        "cluster_id",
        "env",
        "host_name",
        "hostname",
        "host",
        "service",
        "version",
    }
)
"""Tag names the Datadog backend reserves; upstream's test stub refuses them in submissions."""

__all__ = ["GENERIC_TAGS", "tagger"]
