"""Work that runs ahead in a second process: a producer's items are made there while this process
consumes the previous ones (the activity import reads and prepares its next batch while the current one
is stored: two cores instead of one, ADR 23).

The child is forked, so the producer is any callable (nothing is pickled but its items); it gets its own
database connections from ``connect`` (closed when it is done) and never touches the parent's. Items cross
a pipe, one at a time; the consumer keeps up to :data:`BUFFERED` received items (as bytes), so the child
runs a few items ahead at most (those, one being received, one being sent) and memory stays bounded. An
exception in the child is raised again in the consumer; a consumer that stops early stops the child.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import queue
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from multiprocessing.connection import Connection
from typing import Any, TypeVar, cast

T = TypeVar("T")
C = TypeVar("C")

_ITEM, _END, _ERROR = "item", "end", "error"
#: Items received from the child and not yet asked for, at most (as bytes, unpickled when asked for).
BUFFERED = 2


class ReadAheadFailed(RuntimeError):
    """The child process stopped without a word (killed, out of memory) or raised what cannot be pickled."""


def _child(
    out: Connection,
    other_end: Connection,
    produce: Callable[[C], Iterator[Any]],
    connect: Callable[[], AbstractContextManager[C]],
    between: Callable[[C], None] | None,
) -> None:
    # the consumer's end, inherited: closed here, so a consumer that dies (even by SIGKILL) breaks the pipe
    # and the next send ends this process instead of blocking it forever
    other_end.close()
    code = 0
    try:
        with connect() as resource:
            for item in produce(resource):
                out.send((_ITEM, item))
                if between is not None:  # the item is sent: this work overlaps the consumer's
                    between(resource)
        out.send((_END, None))
    except BaseException as exc:  # the consumer decides what an error means
        code = 1
        try:
            # what the consumer can receive: our own exception, not outside data
            error = pickle.loads(pickle.dumps(exc))  # noqa: S301
        except Exception:
            error = ReadAheadFailed(f"{type(exc).__name__}: {exc}")
        with contextlib.suppress(OSError):  # the consumer is gone
            out.send((_ERROR, error))
    finally:
        with contextlib.suppress(OSError):
            out.close()
    # straight out: no flushing of streams a thread of the parent may have held locked at the fork, no
    # exit handlers of the parent's
    os._exit(code)


class RunningAhead(Iterator[T]):
    """The consumer's side: the items of a child already started (see :func:`run_ahead`).

    A thread of the consumer's takes the child's items off the pipe as they come, as bytes, and keeps up
    to :data:`BUFFERED` of them: the child may then run that many items ahead (a consumer that takes
    longer over some items than others, committing say, need not wait for the child after them); the
    items are unpickled one at a time as they are asked for."""

    def __init__(
        self,
        produce: Callable[[C], Iterator[T]],
        connect: Callable[[], AbstractContextManager[C]],
        between: Callable[[C], None] | None = None,
    ) -> None:
        context = multiprocessing.get_context("fork")
        self._receive, send = context.Pipe(duplex=False)
        self._child = context.Process(
            target=_child,
            args=(send, self._receive, produce, connect, between),
            daemon=True,
            name="read-ahead",
        )
        self._child.start()
        send.close()  # the child's end: when the child ends, receiving here ends with EOFError
        self._done = self._finished = False
        self._failure: BaseException | None = None
        self._stopping = threading.Event()
        self._items: queue.Queue[bytes | None] = queue.Queue(maxsize=BUFFERED)
        self._pump = threading.Thread(target=self._take, name="read-ahead-pump", daemon=True)
        self._pump.start()

    def _take(self) -> None:
        """Receive until the child's end of the pipe closes or the consumer stops; ``None`` then ends what
        the consumer gets, whatever ended the receiving (an error here is kept for the consumer)."""
        try:
            while not self._stopping.is_set():
                try:
                    data = self._receive.recv_bytes()
                except (EOFError, OSError):
                    return
                self._put(data)
        except BaseException as exc:  # (out of memory receiving a piece, say): the consumer must hear
            self._failure = exc
        finally:
            self._put(None)

    def _put(self, data: bytes | None) -> None:
        while not self._stopping.is_set():
            try:
                self._items.put(data, timeout=0.1)
                return
            except queue.Full:
                continue

    def __iter__(self) -> RunningAhead[T]:
        return self

    def __next__(self) -> T:
        if self._done:
            raise StopIteration
        data = self._items.get()
        if data is None:
            self.close()
            if self._failure is not None:
                raise ReadAheadFailed(
                    f"receiving from the read-ahead process failed: {self._failure!r}"
                ) from (self._failure)
            raise ReadAheadFailed(
                f"the read-ahead process ended without finishing (exit code {self._child.exitcode})"
            )
        kind, payload = pickle.loads(data)  # noqa: S301 - our own child's items
        if kind == _ITEM:
            return cast(T, payload)
        self._finished = True  # its last word: the child is on its way out
        self.close()
        if kind == _END:
            raise StopIteration
        raise payload

    def close(self) -> None:
        """Stop receiving; a child still at work is stopped."""
        if self._done:
            return
        self._done = True
        self._stopping.set()
        child = self._child
        if self._finished:
            child.join(timeout=1)
        if child.is_alive():  # at work, or waiting for the pipe: stopped (its end of the pipe closes)
            child.terminate()
            child.join(timeout=10)
        if child.is_alive() and child.pid:  # pragma: no cover - a child that ignores SIGTERM
            os.kill(child.pid, signal.SIGKILL)
            child.join()
        self._pump.join()  # the pipe has ended (EOF) or the pump stopped at the event
        self._receive.close()


def run_ahead(
    produce: Callable[[C], Iterator[T]],
    connect: Callable[[], AbstractContextManager[C]],
    *,
    between: Callable[[C], None] | None = None,
) -> RunningAhead[T]:
    """Start ``produce`` in a forked process now, with what ``connect`` opens there (and closes when it
    is done); the result yields its items here, in order, and ``close()`` stops it. ``between`` runs
    there, with the same resource, each time an item has been sent (received here: work of the child's
    that overlaps the consumer's). The caller forks with no database connection of its own open (SQLite
    keeps its file locks per process: a child forked while the parent has the file open would not take
    real locks of its own)."""
    return RunningAhead(produce, connect, between)
