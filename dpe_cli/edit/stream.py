"""Bounded hand-over between pipeline stages running in threads.

Decoding, inference and encoding overlap (torch, OpenCV and pipe I/O release the GIL) while
each queue holds only a few frames, so memory stays flat however long the video is. An
exception in any stage reaches the caller; closing stops every stage.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

from dpe_cli.closing import Closing

T = TypeVar("T")
_END = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class Prefetch(Closing, Generic[T]):
    """Iterates ``source`` in a background thread, ``depth`` items ahead of the consumer."""

    def __init__(self, source: Iterable[T], depth: int, name: str) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(source,), name=name, daemon=True)
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, source: Iterable[T]) -> None:
        try:
            for item in source:
                if not self._put(item):
                    break
            self._put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            self._put(_Failure(exc))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        item = self._queue.get()
        if item is _END:
            self._queue.put(_END)  # stay exhausted
            raise StopIteration
        if isinstance(item, _Failure):
            raise item.exc
        return item

    def close(self) -> None:
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=0.05)
            except queue.Empty:
                pass
        self._thread.join()


class Sink(Closing, Generic[T]):
    """Consumes items with ``handle`` in a background thread; ``put`` blocks when ``depth``
    items are waiting, and re-raises the first error of ``handle``."""

    def __init__(self, handle: Callable[[T], None], depth: int, name: str) -> None:
        self._handle = handle
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if self._error is None:
                try:
                    self._handle(item)
                except BaseException as exc:  # noqa: BLE001 - re-raised in the producer
                    self._error = exc

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def put(self, item: T) -> None:
        self._check()
        self._queue.put(item)

    def close(self) -> None:
        """Wait for the queued items to be handled, then raise the stage's error if any."""
        self._queue.put(_END)
        self._thread.join()
        self._check()

    def abort(self) -> None:
        """Drop what is queued and stop without handling it."""
        self._error = self._error or RuntimeError("aborted")
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass
        self._queue.put(_END)
        self._thread.join()


class StageTimer:
    """Seconds spent per stage, summed over the run (stages overlap, so they may exceed wall time)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds

    def timed(self, stage: str, fn: Callable[..., T], *args: object) -> T:
        start = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.add(stage, time.perf_counter() - start)


def timed(items: Iterable[T], timer: StageTimer, stage: str) -> Iterator[T]:
    """``items`` with the time spent producing each one added to ``stage``."""
    iterator = iter(items)
    while True:
        start = time.perf_counter()
        try:
            item = next(iterator)
        except StopIteration:
            return
        finally:
            timer.add(stage, time.perf_counter() - start)
        yield item


def batched(items: Iterable[T], n: int) -> Iterator[list[T]]:
    """Lists of ``n`` consecutive items (the last may be shorter)."""
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, n)):
        yield batch
