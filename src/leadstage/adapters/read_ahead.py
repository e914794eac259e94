"""Work that runs ahead in a second process: a producer's items are made there while this process
consumes the previous ones (the activity import reads and prepares its next batch while the current one
is stored: two cores instead of one, ADR 23).

The child is forked, so the producer is any callable (nothing is pickled but its items); it gets its own
database connections from ``connect`` (closed when it is done) and never touches the parent's. Items cross a pipe, one at a time:
the child runs at most one item ahead of the consumer (the pipe blocks it), so memory stays bounded. An
exception in the child is raised again in the consumer; a consumer that stops early stops the child.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from multiprocessing.connection import Connection
from typing import Any, TypeVar

T = TypeVar("T")
C = TypeVar("C")

_ITEM, _END, _ERROR = "item", "end", "error"


class ReadAheadFailed(RuntimeError):
    """The child process stopped without a word (killed, out of memory) or raised what cannot be pickled."""


def _child(
    out: Connection, produce: Callable[[C], Iterator[Any]], connect: Callable[[], AbstractContextManager[C]]
) -> None:
    try:
        with connect() as resource:
            for item in produce(resource):
                out.send((_ITEM, item))
        out.send((_END, None))
    except BaseException as exc:  # the consumer decides what an error means
        try:
            # what the consumer can receive: our own exception, not outside data
            error = pickle.loads(pickle.dumps(exc))  # noqa: S301
        except Exception:
            error = ReadAheadFailed(f"{type(exc).__name__}: {exc}")
        out.send((_ERROR, error))
    finally:
        out.close()


def run_ahead(
    produce: Callable[[C], Iterator[T]], connect: Callable[[], AbstractContextManager[C]]
) -> Iterator[T]:
    """Run ``produce`` in a forked process, with what ``connect`` opens there (and closes when it is
    done), and yield its items here, in order."""
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(send, produce, connect), daemon=True, name="read-ahead")
    child.start()
    send.close()  # the child's end: when the child dies, receiving here ends with EOFError
    finished = False
    try:
        while True:
            try:
                kind, payload = receive.recv()
            except EOFError:
                raise ReadAheadFailed(
                    f"the read-ahead process ended without finishing (exit code {child.exitcode})"
                ) from None
            if kind == _ITEM:
                yield payload
            elif kind == _END:
                finished = True
                return
            else:
                finished = True
                raise payload
    finally:
        receive.close()
        if not finished and child.is_alive():
            child.terminate()
        child.join(timeout=10)
        if child.is_alive():  # pragma: no cover - a child that ignores SIGTERM
            os.kill(child.pid or 0, 9)
            child.join()
