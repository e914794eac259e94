"""Builds the running product from settings: engine, unit of work, clock, identity normaliser."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from leadstage.adapters.clock import SystemClock
from leadstage.adapters.db.engine import checkpoint, make_engine
from leadstage.adapters.db.inbox import SqliteInbox, inbox_path
from leadstage.adapters.db.unit_of_work import SqlUnitOfWorkFactory
from leadstage.adapters.http import UrllibSender
from leadstage.adapters.identity import LibraryIdentityNormalizer
from leadstage.adapters.keyring import KeyringFile, create_keyring, require_path
from leadstage.adapters.mail import SmtpMailer
from leadstage.adapters.read_ahead import run_ahead
from leadstage.adapters.scoring_yaml import load_qualification_setup, load_yaml
from leadstage.config import Settings
from leadstage.domain.identity import EmailRules
from leadstage.domain.qualification import DEFAULT_SETUP, QualificationSetup
from leadstage.domain.signing import Keyring
from leadstage.services import ingest, notifications, webhooks
from leadstage.services import routing as routing_service
from leadstage.services import tick as tick_service
from leadstage.services.ingest import ImportContext
from leadstage.services.ports import (
    Clock,
    IdentityNormalizer,
    NullProgress,
    Progress,
    UnitOfWork,
    UnitOfWorkFactory,
)
from leadstage.services.report_cache import ReportCache
from leadstage.services.scoring import Loader
from leadstage.services.tick import Evaluator

T = TypeVar("T")

#: SQLite's page cache in an import's read-ahead process, which only looks leads up by email or id
READ_AHEAD_CACHE_MB = 8

#: activities of the backlog one tick follows up at most, in its one transaction (the servers' follow-up
#: loops take the rest, from their start on)
TICK_BACKLOG_LIMIT = ingest.BACKLOG_CHUNK


@dataclass
class Container:
    settings: Settings
    engine: Engine
    uow: UnitOfWorkFactory
    clock: Clock
    identity: IdentityNormalizer
    email_rules: EmailRules = field(default_factory=EmailRules)

    def close(self) -> None:
        if "inbox" in self.__dict__ and self.inbox is not None:
            self.inbox.close()
        self.engine.dispose()

    @cached_property
    def inbox(self) -> SqliteInbox | None:
        """Where the API's activity batches wait for the follow-up (ADR 24): a file beside a SQLite
        database; None on PostgreSQL (and for a database in memory), where batches are stored at once."""
        url = self.engine.url
        if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
            return None
        return SqliteInbox(inbox_path(str(url.database)))

    def writer(self, *, write: bool = True) -> UnitOfWork:
        """A unit of work that will write (on SQLite: takes the write lock up front); a factory like ``uow``."""
        return self.uow(write=write)

    @cached_property
    def _serial_uow(self) -> SqlUnitOfWorkFactory:
        return SqlUnitOfWorkFactory(self.engine, serial=True)

    def serial_writer(self, *, write: bool = True) -> UnitOfWork:
        """A writer that takes turns with every other identity-resolving writer (imports from any process
        or server), transaction by transaction: two imports never both create the same person."""
        return self._serial_uow(write=True)

    def scoring_loader(self) -> Loader:
        """Reads scoring model documents (YAML with line numbers)."""
        return lambda text, name: load_yaml(text, source=name)

    def incremental_loader(self) -> Loader | None:
        """The scoring loader when scores follow arriving records (``incremental_scoring``), else None."""
        return self.scoring_loader() if self.settings.incremental_scoring else None

    def import_context(
        self,
        *,
        progress: Progress | None = None,
        actor: str = "import",
        defer: bool = False,
        read_ahead: bool = False,
    ) -> ImportContext:
        """How imports run here: settings, clock, identity rules, and scoring as records land (when on);
        ``defer``: activities' scoring and credits are left to the backlog (:meth:`follow_up`);
        ``read_ahead``: large activity files are read and prepared in a forked second process (for a
        command-line process only: a server's threads must not be forked)."""
        s = self.settings
        return ImportContext(
            uow_factory=self.serial_writer,  # imports write and resolve identities: one batch at a time
            clock=self.clock,
            normalizer=self.identity,
            email_rules=self.email_rules,
            tz=s.tz,
            day_first=s.date_day_first,
            auto_create_accounts=s.auto_create_accounts,
            batch_rows=s.import_batch_rows,
            progress=progress or NullProgress(),
            actor=actor,
            scoring_loader=self.incremental_loader(),
            defer_follow_ups=defer,
            read_ahead=self.read_ahead if read_ahead else None,
            inbox=self.inbox if defer else None,
            reader=self.uow,
        )

    def read_ahead(self, produce: Callable[[UnitOfWorkFactory], Iterator[T]]) -> Iterator[T]:
        """``produce`` in a forked process with its own connections to this database (ADR 23)."""
        url = self.settings.database_url
        # no connection of this process open at the fork: SQLite keeps file locks per process, and a child
        # forked while its parent holds the file open would read (and checkpoint) without taking locks of
        # its own; a unit of work still open here is a mistake of the caller's, refused
        in_use = getattr(self.engine.pool, "checkedout", lambda: 0)()
        if in_use:
            raise RuntimeError(
                f"read-ahead asked for with {in_use} database connection(s) of this process in use"
            )
        self.engine.dispose()

        @contextmanager
        def readers() -> Iterator[SqlUnitOfWorkFactory]:
            engine = make_engine(url, cache_mb=READ_AHEAD_CACHE_MB)
            try:
                yield SqlUnitOfWorkFactory(engine)
            finally:
                engine.dispose()

        def checkpoints(readers: SqlUnitOfWorkFactory) -> None:
            # SQLite: the log the importing process grows is copied into the database file here, while it
            # stores the piece it was just given, instead of in its commits (ADR 23). A help, not a duty:
            # one that fails (the file busy in some other way) leaves the log to the writer's own checkpoints
            # and must not stop the import
            with contextlib.suppress(SQLAlchemyError, sqlite3.Error):
                checkpoint(readers.engine)

        return run_ahead(produce, readers, between=checkpoints)

    def follow_up(self) -> ingest.FollowUps:
        """Run the activity backlog's follow-ups (touches, scoring when on, attribution credits) until it
        is empty; the MQLs it promoted are routed at once (as after an import)."""
        done = ingest.drain_backlog(
            self.serial_writer, load=self.incremental_loader(), clock=self.clock, inbox=self.inbox
        )
        if done.promoted:
            with self.writer() as uow:
                routing_service.route_pending(uow, at=self.clock.now())
                uow.commit()
        if done.activities:  # the log the batches grew goes into the database here, not in a request
            checkpoint(self.engine)
        return done

    def tick_evaluators(self) -> list[tuple[str, Evaluator]]:
        """The time-based rules ``tick`` runs, with the ones that need an adapter (webhook delivery)."""
        sender = UrllibSender()
        s = self.settings
        load = self.incremental_loader()

        def backlog(uow: UnitOfWork, now: datetime) -> dict[str, int]:
            # first: activities left to the backlog are scored (and promoted) before the hand-off routes
            done = ingest.run_backlog(uow, load=load, at=now, limit=TICK_BACKLOG_LIMIT, inbox=self.inbox)
            return {"followed_up": done.activities, "promoted": done.promoted}

        evaluators = [
            ("activities", backlog),
            *tick_service.EVALUATORS,
            ("webhooks", lambda uow, now: webhooks.run(uow, sender, now)),
        ]
        if s.smtp_host:
            mailer = SmtpMailer(
                s.smtp_host,
                s.smtp_port,
                s.smtp_from,
                starttls=s.smtp_starttls,
                user=s.smtp_user,
                password=s.smtp_password,
            )
            evaluators.append(("mail", lambda uow, now: notifications.run(uow, mailer, now)))
        if "report_cache" in self.__dict__:  # pages asked for reports: keep them fresh (ADR 19)
            evaluators.append(("reports", self.report_cache.refresh_due))
        return evaluators

    @cached_property
    def _keyring_file(self) -> KeyringFile:
        return KeyringFile(require_path(self.settings.database_url, self.settings.secret_file))

    def keyring_path(self) -> Path:
        """Where the session signing keys are kept (``KeyringProblem`` when that is not known)."""
        return self._keyring_file.path

    def ensure_keyring(self) -> bool:
        """Generate the signing key file when it does not exist yet; True when it was created now."""
        return create_keyring(self.keyring_path(), at=self.clock.now())

    def session_keys(self) -> Keyring:
        """The current signing keys (read again when another process rotated them)."""
        return self._keyring_file.get()

    @cached_property
    def report_cache(self) -> ReportCache:
        """Report documents for pages (the dashboard), computed once and refreshed by the tick."""
        return ReportCache(self.uow, self.clock)

    @cached_property
    def qualification(self) -> QualificationSetup:
        """The qualification frameworks: the file named by the settings, else BANT."""
        if not self.settings.qualification_file:
            return DEFAULT_SETUP
        return load_qualification_setup(Path(self.settings.qualification_file))


def build(settings: Settings, *, clock: Clock | None = None) -> Container:
    engine = make_engine(settings.database_url)
    rules = EmailRules(strip_plus=settings.email_strip_plus, gmail_dots=settings.email_gmail_dots)
    return Container(
        settings=settings,
        engine=engine,
        uow=SqlUnitOfWorkFactory(engine),
        clock=clock or SystemClock(),
        identity=LibraryIdentityNormalizer(rules=rules, default_region=settings.default_phone_region),
        email_rules=rules,
    )
