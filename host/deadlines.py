"""Waiting for something with a deadline, without cancelling it.

``Deferred.addTimeout`` cancels the Deferred it guards; when the host gives up on a plugin's
run or a worker thread it must leave them alone (a thread cannot be cancelled), and only stop
waiting.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime


def wait_at_most(
    clock: IReactorTime,
    source: defer.Deferred[Any],
    timeout: float,
    on_timeout: Callable[[], None],
) -> defer.Deferred[bool]:
    """Fire ``True`` when ``source`` fires, or ``False`` after ``timeout`` seconds (calling
    ``on_timeout`` then). ``source``'s own result chain is left untouched."""
    done: defer.Deferred[bool] = defer.Deferred()

    def finished(result: object) -> object:
        if not done.called:
            call.cancel()
            done.callback(True)
        return result

    def expired() -> None:
        if not done.called:
            on_timeout()
            done.callback(False)

    call = clock.callLater(timeout, expired)
    source.addBoth(finished)
    return done
