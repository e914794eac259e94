"""Work that runs ahead in a second process: a producer's items are made there while this process
consumes the previous ones (the activity import reads and prepares its next batch while the current one
is stored: two cores instead of one, ADR 23).

The child is forked, so the producer is any callable (nothing is pickled but its items); it gets its own
database connections from ``connect`` (closed when it is done) and never touches the parent's. Items cross a pipe, one at a time:
the child runs at most one item ahead of the consumer (the pipe blocks it), so memory stays bounded. An
exception in the child is raised again in the consumer; a consumer that stops early stops the child.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import signal
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from multiprocessing.connection import Connection
from typing import Any, TypeVar, cast

T = TypeVar("T")
C = TypeVar("C")

_ITEM, _END, _ERROR = "item", "end", "error"


class ReadAheadFailed(RuntimeError):
    """The child process stopped without a word (killed, out of memory) or raised what cannot be pickled."""


def _child(
    out: Connection,
    other_end: Connection,
    produce: Callable[[C], Iterator[Any]],
    connect: Callable[[], AbstractContextManager[C]],
) -> None:
    # the consumer's end, inherited: closed here, so a consumer that dies (even by SIGKILL) breaks the pipe
    # and the next send ends this process instead of blocking it forever
    other_end.close()
    code = 0
    try:
        with connect() as resource:
            for item in produce(resource):
                out.send((_ITEM, item))
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
    """The consumer's side: the items of a child already started (see :func:`run_ahead`)."""

    def __init__(
        self, produce: Callable[[C], Iterator[T]], connect: Callable[[], AbstractContextManager[C]]
    ) -> None:
        context = multiprocessing.get_context("fork")
        self._receive, send = context.Pipe(duplex=False)
        self._child = context.Process(
            target=_child, args=(send, self._receive, produce, connect), daemon=True, name="read-ahead"
        )
        self._child.start()
        send.close()  # the child's end: when the child ends, receiving here ends with EOFError
        self._done = False

    def __iter__(self) -> RunningAhead[T]:
        return self

    def __next__(self) -> T:
        if self._done:
            raise StopIteration
        try:
            kind, payload = self._receive.recv()
        except EOFError:
            self.close()
            raise ReadAheadFailed(
                f"the read-ahead process ended without finishing (exit code {self._child.exitcode})"
            ) from None
        if kind == _ITEM:
            return cast(T, payload)
        self.close()
        if kind == _END:
            raise StopIteration
        raise payload

    def close(self) -> None:
        """Stop receiving; a child still at work is stopped."""
        if self._done:
            return
        self._done = True
        self._receive.close()
        child = self._child
        child.join(timeout=1)
        if child.is_alive():
            child.terminate()
            child.join(timeout=10)
        if child.is_alive() and child.pid:  # pragma: no cover - a child that ignores SIGTERM
            os.kill(child.pid, signal.SIGKILL)
            child.join()


def run_ahead(
    produce: Callable[[C], Iterator[T]], connect: Callable[[], AbstractContextManager[C]]
) -> RunningAhead[T]:
    """Start ``produce`` in a forked process now, with what ``connect`` opens there (and closes when it
    is done); the result yields its items here, in order, and ``close()`` stops it. The caller forks
    with no database connection of its own open (SQLite keeps its file locks per process: a child forked
    while the parent has the file open would not take real locks of its own)."""
    return RunningAhead(produce, connect)
