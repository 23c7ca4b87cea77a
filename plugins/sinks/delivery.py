"""One destination's delivery loop: spool in, batches out over HTTP, retries, counters.

Everything runs in the reactor thread. Events are appended to the :class:`~.spool.Spool`
first; the loop reads one batch at a time, sends it, and acknowledges it only once the
destination answered 2xx (delivered) or a 4xx that retrying cannot fix (dropped, with the
reason logged). Connection errors, timeouts, 408, 429 and 5xx keep the batch and try again
after an exponential backoff with jitter, for as long as it takes: the spool's byte bound,
not the outage, limits what is kept.

A partial batch waits at most ``batch_wait`` for company; a full one (by record count or
bytes) leaves at once, and so does the backlog found in the spool at start.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer, task
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from host.deadlines import wait_at_most
from plugins.sinks.backoff import Backoff
from plugins.sinks.records import StoredEvent, decode_event
from plugins.sinks.settings import BatchSettings
from plugins.sinks.spool import Batch, DropReport, OpenReport, Spool
from plugins.sinks.transport import (
    Outcome,
    Request,
    Response,
    Transport,
    classify,
    describe_failure,
)

log = Logger(namespace="sinks.delivery")

DROP_LOG_INTERVAL = 10.0
"""Seconds between two "spool full" warnings while a destination stays down."""

Encoder = Callable[[Sequence[StoredEvent]], Request]


@dataclass
class DeliveryStats:
    sent: int = 0
    requests: int = 0
    retried: int = 0
    dropped_spool_full: int = 0
    dropped_rejected: int = 0
    dropped_invalid: int = 0
    replayed: int = 0
    truncated_bytes: int = 0
    last_error: str = ""
    last_error_time: float | None = None

    @property
    def dropped(self) -> int:
        return self.dropped_spool_full + self.dropped_rejected + self.dropped_invalid


class DeliveryLoop:
    """Deliver what is spooled for one destination (one URL)."""

    def __init__(
        self,
        name: str,
        url: str,
        spool: Spool,
        *,
        encode: Encoder,
        transport: Transport,
        reactor: Any,
        batch: BatchSettings,
        backoff: Backoff,
        request_timeout: float,
        fsync_interval: float,
    ) -> None:
        self.name = name
        self.url = url
        self.spool = spool
        self.stats = DeliveryStats()
        self._encode = encode
        self._transport = transport
        self._reactor = reactor
        self._batch = batch
        self._backoff = backoff
        self._timeout = request_timeout
        self._fsync_interval = fsync_interval
        self._running = False
        self._flushing = False
        self._request: defer.Deferred[Response] | None = None
        self._timer: IDelayedCall | None = None
        self._retry_call: IDelayedCall | None = None
        self._sync_loop: task.LoopingCall | None = None
        self._failing_since: int | None = None
        self._unlogged_drops = DropReport()
        self._last_drop_log: float | None = None
        self._idle_waiters: list[defer.Deferred[None]] = []

    # --- life ---------------------------------------------------------------------------------

    def open(self) -> OpenReport:
        """Open the spool (events can be appended from now on) and log what it replays."""
        report = self.spool.open()
        self.stats.replayed = report.replayed_records
        self.stats.truncated_bytes = report.truncated_bytes
        for segment in report.truncated_segments:
            log.warn(
                "Sink {sink}: truncated an incomplete or corrupt record at the end of spool "
                "segment {segment} (interrupted write); {bytes} bytes discarded in total",
                sink=self.name,
                segment=segment,
                bytes=report.truncated_bytes,
            )
        if report.replayed_records:
            log.info(
                "Sink {sink}: replaying {records} undelivered event(s) ({bytes} bytes) from the "
                "spool",
                sink=self.name,
                records=report.replayed_records,
                bytes=report.replayed_bytes,
            )
        return report

    def start(self) -> None:
        self._running = True
        if self._fsync_interval > 0:
            self._sync_loop = task.LoopingCall(self.spool.sync)
            self._sync_loop.clock = self._reactor
            self._sync_loop.start(self._fsync_interval, now=False).addErrback(self._sync_failed)
        self._send_now()

    def _sync_failed(self, failure: Failure) -> None:
        self._error(f"spool fsync failed: {failure.getErrorMessage()}")
        log.error("Sink {sink}: {error}", sink=self.name, error=self.stats.last_error)

    def flush(self, timeout: float) -> defer.Deferred[bool]:
        """Send everything queued, without waiting for ``batch_wait``; fires ``True`` once the
        spool is empty, ``False`` when ``timeout`` passes first (the rest stays spooled)."""
        self._flushing = True
        if self._idle():
            return defer.succeed(True)
        if not self._running:  # never started: nothing will send
            return defer.succeed(False)
        waiter: defer.Deferred[None] = defer.Deferred()
        self._idle_waiters.append(waiter)
        if self._retry_call is not None:
            # Stopping is the last chance for a while: try now rather than after the backoff.
            self._retry_call.cancel()
            self._retry_call = None
        if self._request is None:
            self._send_now()
        return wait_at_most(self._reactor, waiter, timeout, lambda: None)

    def close(self) -> None:
        """Stop sending and close the spool; undelivered records wait for the next start."""
        self._running = False
        for call in (self._timer, self._retry_call):
            if call is not None and call.active():
                call.cancel()
        self._timer = self._retry_call = None
        if self._sync_loop is not None and self._sync_loop.running:
            self._sync_loop.stop()
        request, self._request = self._request, None
        if request is not None:
            request.cancel()
        self._log_drops(force=True)
        self.spool.close()

    # --- input --------------------------------------------------------------------------------

    def append(self, record: bytes) -> None:
        dropped = self.spool.append(record)
        if dropped.records:
            self.stats.dropped_spool_full += dropped.records
            self._unlogged_drops.records += dropped.records
            self._unlogged_drops.bytes += dropped.bytes
            self._log_drops()
        self._schedule()

    def count_invalid(self, reason: str) -> None:
        """An event that cannot be sent to this destination at all (bad shape)."""
        self.stats.dropped_invalid += 1
        self._error(reason)
        log.error("Sink {sink}: dropping an event: {reason}", sink=self.name, reason=reason)

    def _log_drops(self, force: bool = False) -> None:
        if not self._unlogged_drops.records:
            return
        now = self._reactor.seconds()
        if (
            not force
            and self._last_drop_log is not None
            and now - self._last_drop_log < DROP_LOG_INTERVAL
        ):
            return
        self._last_drop_log = now
        log.warn(
            "Sink {sink}: spool full ({max} bytes), dropped the {records} oldest undelivered "
            "event(s) ({bytes} bytes); {total} dropped in total",
            sink=self.name,
            max=self.spool.max_bytes,
            records=self._unlogged_drops.records,
            bytes=self._unlogged_drops.bytes,
            total=self.stats.dropped_spool_full,
        )
        self._error(f"spool full: {self.stats.dropped_spool_full} event(s) dropped")
        self._unlogged_drops = DropReport()

    # --- the loop -----------------------------------------------------------------------------

    def _idle(self) -> bool:
        return self.spool.queued_records == 0 and self._request is None

    def _schedule(self) -> None:
        if not self._running or self._request is not None or self._retry_call is not None:
            return
        full = (
            self.spool.pending_records >= self._batch.max_size
            or self.spool.pending_bytes >= self._batch.max_content_size
        )
        if full or self._flushing:
            self._send_now()
        elif self._timer is None and self.spool.pending_records:
            self._timer = self._reactor.callLater(self._batch.wait, self._timer_fired)

    def _timer_fired(self) -> None:
        self._timer = None
        self._send_now()

    def _send_now(self) -> None:
        if self._timer is not None:
            if self._timer.active():
                self._timer.cancel()
            self._timer = None
        if not self._running or self._request is not None or self._retry_call is not None:
            return
        batch = self.spool.inflight
        if batch is None:
            batch = self.spool.read_batch(self._batch.max_size, self._batch.max_content_size)
        if batch is None:
            self._notify_idle()
            return
        events = self._decode(batch)
        if not events:  # nothing readable in it: already counted as invalid
            self.spool.ack(batch)
            self._reactor.callLater(0, self._send_now)
            return
        request = self._encode(events)
        self.stats.requests += 1
        d = self._transport.post(request, self._timeout)
        self._request = d
        d.addCallbacks(self._answered, self._failed, callbackArgs=(batch,), errbackArgs=(batch,))

    def _decode(self, batch: Batch) -> list[StoredEvent]:
        events: list[StoredEvent] = []
        for record in batch.records:
            try:
                events.append(decode_event(record))
            except ValueError as exc:
                self.count_invalid(f"unreadable spool record: {exc}")
        return events

    def _answered(self, response: Response, batch: Batch) -> None:
        if not self._running:
            return
        self._request = None
        outcome = classify(response.status)
        if outcome is Outcome.SENT:
            self._delivered(batch)
        elif outcome is Outcome.RETRY:
            self._retry(f"{response.status} {response.reason}".strip(), len(batch))
        else:
            detail = response.body[:200].decode("utf-8", "replace").strip()
            reason = f"{response.status} {response.reason}".strip()
            self.stats.dropped_rejected += len(batch)
            self._error(f"{reason}: {detail}" if detail else reason)
            log.error(
                "Sink {sink}: {url} refused {records} event(s) with {reason}{detail}; "
                "dropping them (retrying cannot help)",
                sink=self.name,
                url=self.url,
                records=len(batch),
                reason=reason,
                detail=f": {detail}" if detail else "",
            )
            self.spool.ack(batch)
            self._after_batch()

    def _failed(self, failure: Failure, batch: Batch) -> None:
        if not self._running:
            return
        self._request = None
        if isinstance(failure.value, defer.TimeoutError | defer.CancelledError):
            reason = f"no answer within {self._timeout:g}s"
        else:
            reason = describe_failure(failure.value)
        self._retry(reason, len(batch))

    def _delivered(self, batch: Batch) -> None:
        self.stats.sent += len(batch)
        self.spool.ack(batch)
        if self._failing_since is not None:
            log.info(
                "Sink {sink}: delivery to {url} works again after {retries} retry(ies)",
                sink=self.name,
                url=self.url,
                retries=self._backoff.attempts,
            )
            self._failing_since = None
        self._backoff.reset()
        self._after_batch()

    def _after_batch(self) -> None:
        if self.spool.pending_records >= self._batch.max_size or self._flushing:
            self._reactor.callLater(0, self._send_now)
        else:
            self._schedule()
        if self._idle():
            self._notify_idle()

    def _retry(self, reason: str, records: int) -> None:
        self._error(reason)
        delay = self._backoff.next_delay()
        self.stats.retried += 1
        if self._failing_since is None:
            self._failing_since = self.stats.retried
        log.warn(
            "Sink {sink}: sending {records} event(s) to {url} failed ({reason}); retry "
            "{attempt} in {delay:.1f}s, {queued} event(s) queued",
            sink=self.name,
            records=records,
            url=self.url,
            reason=reason,
            attempt=self._backoff.attempts,
            delay=delay,
            queued=self.spool.queued_records,
        )
        self._retry_call = self._reactor.callLater(delay, self._retry_fired)

    def _retry_fired(self) -> None:
        self._retry_call = None
        self._send_now()

    def _notify_idle(self) -> None:
        if not self._idle():
            return
        waiters, self._idle_waiters = self._idle_waiters, []
        for waiter in waiters:
            waiter.callback(None)

    def _error(self, message: str) -> None:
        self.stats.last_error = message
        self.stats.last_error_time = self._reactor.seconds()

    # --- reporting ----------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        s = self.stats
        return {
            "url": self.url,
            "sent": s.sent,
            "requests": s.requests,
            "retried": s.retried,
            "queued_records": self.spool.queued_records,
            "queued_bytes": self.spool.queued_bytes,
            "spool_max_bytes": self.spool.max_bytes,
            "dropped": s.dropped,
            "dropped_spool_full": s.dropped_spool_full,
            "dropped_rejected": s.dropped_rejected,
            "dropped_invalid": s.dropped_invalid,
            "replayed": s.replayed,
            "truncated_bytes": s.truncated_bytes,
            "last_error": s.last_error,
            "last_error_time": s.last_error_time,
        }
