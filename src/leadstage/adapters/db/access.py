"""API tokens and capture forms in SQL; never commits."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, true, update

from leadstage.adapters.db import tables as t
from leadstage.services.ports import CaptureForm, Job, TokenRecord, WebSession

_T = t.api_tokens
_F = t.capture_forms


class SqlAccessRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add_token(
        self, *, user_id: int, name: str | None, digest: str, prefix: str, scope: str, by: str, at: datetime
    ) -> int:
        values = {
            "user_id": user_id,
            "name": name,
            "token_hash": digest,
            "prefix": prefix,
            "scope": scope,
            "created_at": at,
            "created_by": by,
        }
        return int(self.conn.execute(insert(_T).values(values).returning(_T.c.id)).scalar_one())

    def token_by_digest(self, digest: str) -> TokenRecord | None:
        row = self.conn.execute(self._select().where(_T.c.token_hash == digest)).first()
        return None if row is None else _token(row)

    def tokens(self, user_id: int | None = None) -> list[TokenRecord]:
        q = self._select().order_by(_T.c.id)
        if user_id is not None:
            q = q.where(_T.c.user_id == user_id)
        return [_token(r) for r in self.conn.execute(q)]

    def get_token(self, token_id: int) -> TokenRecord | None:
        row = self.conn.execute(self._select().where(_T.c.id == token_id)).first()
        return None if row is None else _token(row)

    def revoke_token(self, token_id: int, *, at: datetime) -> bool:
        q = update(_T).where(_T.c.id == token_id, _T.c.revoked_at.is_(None)).values(revoked_at=at)
        return bool(self.conn.execute(q).rowcount)

    def touch_token(self, token_id: int, *, at: datetime) -> None:
        self.conn.execute(update(_T).where(_T.c.id == token_id).values(last_used_at=at))

    @staticmethod
    def _select() -> Any:
        return select(_T, t.users.c.username, t.users.c.role, t.users.c.team, t.users.c.active).select_from(
            _T.join(t.users, t.users.c.id == _T.c.user_id)
        )

    # -- web sessions

    def add_session(
        self, *, digest: str, user_id: int, at: datetime, expires_at: datetime, client: str | None
    ) -> None:
        self.conn.execute(
            insert(t.web_sessions).values(
                id=digest, user_id=user_id, created_at=at, expires_at=expires_at, client=client
            )
        )

    def session(self, digest: str) -> WebSession | None:
        s = t.web_sessions
        q = select(s, t.users.c.username, t.users.c.role, t.users.c.team, t.users.c.active).select_from(
            s.join(t.users, t.users.c.id == s.c.user_id)
        )
        r = self.conn.execute(q.where(s.c.id == digest)).first()
        if r is None:
            return None
        return WebSession(r.id, int(r.user_id), r.username, r.role, r.team, bool(r.active), r.expires_at)

    def end_session(self, digest: str) -> None:
        self.conn.execute(delete(t.web_sessions).where(t.web_sessions.c.id == digest))

    def end_sessions(self, user_id: int) -> None:
        self.conn.execute(delete(t.web_sessions).where(t.web_sessions.c.user_id == user_id))

    # -- jobs

    def add_job(self, job: Job) -> None:
        self.conn.execute(
            insert(t.jobs).values(
                id=job.id,
                kind=job.kind,
                status=job.status,
                params=dict(job.params),
                created_by=job.created_by,
                created_at=job.created_at,
                runner=job.runner,
            )
        )

    def job(self, job_id: str) -> Job | None:
        r = self.conn.execute(select(t.jobs).where(t.jobs.c.id == job_id)).first()
        if r is None:
            return None
        return Job(
            r.id,
            r.kind,
            r.status,
            r.params,
            r.created_by,
            r.created_at,
            r.result,
            r.error,
            r.started_at,
            r.finished_at,
            r.runner,
        )

    def update_job(self, job_id: str, **values: Any) -> None:
        self.conn.execute(update(t.jobs).where(t.jobs.c.id == job_id).values(**values))

    def interrupt_jobs(self, at: datetime, *, alive_runners: Collection[str] = ()) -> int:
        """Jobs left queued or running by a server that stopped (any but ``alive_runners``): failed, saying so."""
        j = t.jobs
        gone = j.c.runner.is_(None) | j.c.runner.not_in(list(alive_runners)) if alive_runners else true()
        q = (
            update(t.jobs)
            .where(t.jobs.c.status.in_(("queued", "running")), gone)
            .values(
                status="failed",
                error="interrupted: the server stopped before the job finished",
                finished_at=at,
            )
        )
        return int(self.conn.execute(q).rowcount)

    # -- capture forms

    def add_form(self, form: CaptureForm) -> int:
        values = {
            "key": form.key,
            "name": form.name,
            "source": form.source,
            "redirect_url": form.redirect_url,
            "active": form.active,
            "created_at": form.created_at,
        }
        return int(self.conn.execute(insert(_F).values(values).returning(_F.c.id)).scalar_one())

    def form_by_key(self, key: str) -> CaptureForm | None:
        row = self.conn.execute(select(_F).where(_F.c.key == key)).first()
        return None if row is None else _form(row)

    def forms(self) -> list[CaptureForm]:
        return [_form(r) for r in self.conn.execute(select(_F).order_by(_F.c.id))]


def _token(r: Any) -> TokenRecord:
    return TokenRecord(
        id=int(r.id),
        user_id=int(r.user_id),
        username=r.username,
        role=r.role,
        team=r.team,
        user_active=bool(r.active),
        name=r.name,
        prefix=r.prefix,
        scope=r.scope,
        created_at=r.created_at,
        created_by=r.created_by,
        last_used_at=r.last_used_at,
        revoked_at=r.revoked_at,
    )


def _form(r: Any) -> CaptureForm:
    return CaptureForm(
        id=int(r.id),
        key=r.key,
        name=r.name,
        source=r.source,
        redirect_url=r.redirect_url,
        active=bool(r.active),
        created_at=r.created_at,
    )
