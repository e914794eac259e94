"""The SQL unit of work: one connection, one transaction; only ``commit`` makes it durable."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy import Connection, Engine

from leadstage.adapters.db.access import SqlAccessRepository
from leadstage.adapters.db.audit import SqlAuditRepository
from leadstage.adapters.db.disqualification import SqlDisqualificationRepository
from leadstage.adapters.db.leases import SqlLeaseRepository
from leadstage.adapters.db.predictive import SqlPredictiveRepository
from leadstage.adapters.db.reports import SqlReportQueries
from leadstage.adapters.db.repositories import (
    SqlAccountRepository,
    SqlActivityRepository,
    SqlBulkWriter,
    SqlExportQueries,
    SqlLeadRepository,
    SqlPropertyRepository,
    SqlQualificationRepository,
    SqlUserRepository,
)
from leadstage.adapters.db.routing import SqlRoutingRepository
from leadstage.adapters.db.scoring import SqlScoringRepository
from leadstage.adapters.db.segments import SqlSegmentRepository
from leadstage.adapters.db.tasks import SqlTaskRepository
from leadstage.adapters.db.webhooks import SqlMailRepository, SqlWebhookRepository
from leadstage.adapters.db.workspace import SqlWorkspaceQueries


class SqlUnitOfWork:
    leads: SqlLeadRepository
    accounts: SqlAccountRepository
    users: SqlUserRepository
    activities: SqlActivityRepository
    properties: SqlPropertyRepository
    qualifications: SqlQualificationRepository
    bulk: SqlBulkWriter
    exports: SqlExportQueries
    scoring: SqlScoringRepository
    segments: SqlSegmentRepository
    tasks: SqlTaskRepository
    disqualifications: SqlDisqualificationRepository
    access: SqlAccessRepository
    routing: SqlRoutingRepository
    webhooks: SqlWebhookRepository
    mail: SqlMailRepository
    audit: SqlAuditRepository
    predictive: SqlPredictiveRepository
    reports: SqlReportQueries
    workspace: SqlWorkspaceQueries
    leases: SqlLeaseRepository

    def __init__(self, engine: Engine, *, write: bool = False, serial: bool = False) -> None:
        self.engine = engine
        self.write = write or serial
        self.serial = serial
        self._conn: Connection | None = None

    def __enter__(self) -> Self:
        conn = self.engine.connect()
        if self.write:
            conn = conn.execution_options(leadstage_write=True, leadstage_serial=self.serial)
        conn.begin()
        self._conn = conn
        self.leads = SqlLeadRepository(conn)
        self.accounts = SqlAccountRepository(conn)
        self.users = SqlUserRepository(conn)
        self.activities = SqlActivityRepository(conn)
        self.properties = SqlPropertyRepository(conn)
        self.qualifications = SqlQualificationRepository(conn)
        self.bulk = SqlBulkWriter(conn)
        self.exports = SqlExportQueries(conn)
        self.scoring = SqlScoringRepository(conn)
        self.segments = SqlSegmentRepository(conn)
        self.tasks = SqlTaskRepository(conn)
        self.disqualifications = SqlDisqualificationRepository(conn)
        self.access = SqlAccessRepository(conn)
        self.routing = SqlRoutingRepository(conn)
        self.webhooks = SqlWebhookRepository(conn)
        self.mail = SqlMailRepository(conn)
        self.audit = SqlAuditRepository(conn)
        self.predictive = SqlPredictiveRepository(conn)
        self.reports = SqlReportQueries(conn)
        self.workspace = SqlWorkspaceQueries(conn)
        self.leases = SqlLeaseRepository(conn)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        conn = self._conn
        self._conn = None
        if conn is None:
            return
        try:
            if conn.in_transaction():
                conn.rollback()
        finally:
            conn.close()

    @property
    def connection(self) -> Connection:
        if self._conn is None:
            raise RuntimeError("the unit of work is not open")
        return self._conn

    def commit(self) -> None:
        # The next statement begins the next transaction (SQLAlchemy's autobegin): a writing unit of work
        # does not hold SQLite's write lock between its commit and its next write.
        self.connection.commit()

    def rollback(self) -> None:
        self.connection.rollback()


class SqlUnitOfWorkFactory:
    def __init__(self, engine: Engine, *, serial: bool = False) -> None:
        self.engine = engine
        self.serial = serial

    def __call__(self, *, write: bool = False) -> SqlUnitOfWork:
        """A unit of work; ``write=True`` when it will write (on SQLite it then waits for the write lock
        up front rather than failing on a stale read snapshot). A ``serial`` factory's units of work also
        take turns with every other serial writer on PostgreSQL, transaction by transaction."""
        return SqlUnitOfWork(self.engine, write=write, serial=self.serial)
