"""Run an iterator one or more items ahead in a background thread (decode while the model computes).

Order and content are those of the serial iterator; an exception raised by the producer is
raised in the consumer at the item where it happened; when the consumer stops early (or raises),
the producer thread is told to stop and is joined, so no thread outlives the loop.
"""

from __future__ import annotations

import queue
import threading
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")
_DONE = object()


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


def prefetch(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """Yield the items of ``items`` in order, producing up to ``depth`` ahead in a daemon thread.

    ``depth`` 0 iterates serially in the caller's thread (the reference the threaded path equals).
    """
    if depth <= 0:
        yield from items
        return
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        slots.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put(_DONE)
        except BaseException as err:  # handed to the consumer, raised there
            slots.put(_Failure(err))

    worker = threading.Thread(target=produce, name="cnninterp-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = slots.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                slots.get_nowait()
            except queue.Empty:
                pass
            worker.join(timeout=0.05)
