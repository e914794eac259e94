"""The SQL unit of work: one connection, one transaction; only ``commit`` makes it durable."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy import Connection, Engine

from leadstage.adapters.db.disqualification import SqlDisqualificationRepository
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
from leadstage.adapters.db.scoring import SqlScoringRepository
from leadstage.adapters.db.segments import SqlSegmentRepository
from leadstage.adapters.db.tasks import SqlTaskRepository


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
    reports: SqlReportQueries

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: Connection | None = None

    def __enter__(self) -> Self:
        conn = self.engine.connect()
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
        self.reports = SqlReportQueries(conn)
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
        conn = self.connection
        conn.commit()
        conn.begin()

    def rollback(self) -> None:
        conn = self.connection
        conn.rollback()
        conn.begin()


class SqlUnitOfWorkFactory:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine)
