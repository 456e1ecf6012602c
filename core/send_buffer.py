"""Items handed over by many threads, sent in batches by one background thread.

The API queues an enrichment after each commit. One broker message per enrichment costs more
than storing the observation (Celery's message building and, on the embedded transport, a file
created per message), so the dispatcher hands enrichments to a ``SendBuffer``: the request
thread only appends to a list, and a sender thread gathers what arrives within ``linger_s`` into
one message. Under light load a batch holds one item and goes out within ``linger_s``.

Nothing is lost for good if the process dies or the broker is down before a batch leaves: the
enrichment rows are committed first, and the workers' recovery loop queues rows left pending.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


class SendBuffer(Generic[T]):
    def __init__(self, send: Callable[[list[T]], None], *, linger_s: float = 0.02, max_batch: int = 500,
                 max_pending: int = 100_000, name: str = "send-buffer"):
        self.send, self.linger_s, self.max_batch, self.name = send, linger_s, max_batch, name
        self.max_pending = max_pending
        self._reset()
        atexit.register(self.flush, 5.0)

    def _reset(self) -> None:
        # also after a fork: the child has the lock's state and the list, but not the thread
        self._cond = threading.Condition()
        self._items: list[T] = []
        self._sending = 0
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    def add(self, items: Iterable[T]) -> None:
        """Hand items over; they leave within ``linger_s`` plus the time of one send."""
        if self._pid != os.getpid():
            self._reset()
        with self._cond:
            self._items.extend(items)
            if len(self._items) > self.max_pending:  # the broker has been away a long time: bound the memory
                dropped = len(self._items) - self.max_pending
                del self._items[:dropped]
                log.error("%s: the broker is not keeping up; %d item(s) left to the workers' recovery loop",
                          self.name, dropped)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything added so far has been sent (or failed); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._items or self._sending:
                left = deadline - time.monotonic()
                if left <= 0 or self._thread is None or self._pid != os.getpid():
                    return False
                self._cond.wait(left)
        return True

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._items:
                    self._cond.wait()
            time.sleep(self.linger_s)  # let the requests of the next few milliseconds join this batch
            with self._cond:
                batch, self._items = self._items, []
                self._sending = len(batch)
            try:
                for start in range(0, len(batch), self.max_batch):
                    self._send(batch[start:start + self.max_batch])
            finally:
                with self._cond:
                    self._sending = 0
                    self._cond.notify_all()

    def _send(self, chunk: list[T]) -> None:
        try:
            self.send(chunk)
        except Exception as exc:  # the broker is down: the recovery loop queues these later
            # one line, not a traceback per batch: an outage is expected, and the cause is in the message
            log.error("%s: could not send %d item(s) (%s: %s); the workers' recovery loop will queue them",
                      self.name, len(chunk), type(exc).__name__, exc)
