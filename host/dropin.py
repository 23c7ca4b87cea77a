"""Regenerate twistd's ``dropin.cache`` for the installed drop-in.

Run once after installing (``python -m host.dropin``): without a cache, or with one the
running user cannot write, every ``twistd`` start rescans all drop-ins and logs an error.
"""

from __future__ import annotations


def regenerate() -> list[str]:
    from twisted.plugin import IPlugin, getPlugins

    from twisted import plugins

    return sorted({type(p).__name__ for p in getPlugins(IPlugin, plugins)})


if __name__ == "__main__":
    regenerate()
    print("twistd drop-in cache regenerated")
