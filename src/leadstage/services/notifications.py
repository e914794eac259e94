"""E-mail notifications through an outbox (issue 7 section 5): the owner of a newly routed MQL, and the
manager whose team missed a first-response deadline (the SLA task made for them).

Like webhooks, mails are made from what every change already writes (``assign`` history rows and
``sla_breach`` tasks) after a stored cursor, one outbox row per event (unique key), and sent with retries
by ``tick``; nothing is lost over a restart and nothing is sent twice. People without an address get
nothing (the task list still has it). Until a mail server is configured nothing is collected, and the
first collection starts at the present.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from leadstage.domain.tasks import TaskKind
from leadstage.domain.webhooks import MAX_ATTEMPTS, backoff_seconds
from leadstage.services.ports import Mailer, UnitOfWork

BATCH = 5_000


@dataclass
class MailReport:
    queued: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def _mail(key: str, to: str, subject: str, body: str, now: datetime) -> dict[str, Any]:
    return {
        "key": key,
        "to_addr": to,
        "subject": subject[:300],
        "body": body,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


def collect(uow: UnitOfWork, *, now: datetime) -> int:
    """Queue the mails for routed MQLs and SLA breaches since the cursors; returns how many were queued."""
    history_cursor, task_cursor = uow.webhooks.cursor("mail-history"), uow.webhooks.cursor("mail-tasks")
    if history_cursor is None or task_cursor is None:  # first run: start at the present
        history, tasks = uow.mail.max_ids()
        uow.webhooks.set_cursor("mail-history", str(history))
        uow.webhooks.set_cursor("mail-tasks", str(tasks))
        return 0
    queued = 0
    after = int(history_cursor)
    while True:
        reached = uow.mail.last_history_id(after, BATCH)
        if reached == after:
            break
        mails = []
        for row in uow.mail.assignments_since(after, BATCH):
            if row["id"] > reached or not row["owner_email"]:
                continue
            name = " ".join(p for p in (row["first_name"], row["last_name"]) if p) or row["email"] or "a lead"
            mails.append(
                _mail(
                    f"assign:{row['id']}",
                    row["owner_email"],
                    f"New MQL for you: {name}" + (f" ({row['company']})" if row["company"] else ""),
                    f"Hello {row['username']},\n\n{name} (lead {row['lead_id']}, priority {row['priority'] or '-'}) "
                    f"was routed to you on {row['at']:%Y-%m-%d %H:%M} UTC.\n"
                    f"See it with `leadstage leads show {row['lead_id']}` or `leadstage routing explain {row['lead_id']}`.\n",
                    now,
                )
            )
        queued += uow.mail.enqueue(mails)
        after = reached
        uow.webhooks.set_cursor("mail-history", str(after))
    after = int(task_cursor)
    while True:
        rows = uow.mail.tasks_since(after, TaskKind.SLA_BREACH.value, BATCH)
        if not rows:
            break
        mails = [
            _mail(
                f"sla:{row['id']}",
                row["owner_email"],
                f"First response missed: lead {row['lead_id']}",
                f"Hello {row['username']},\n\n{row['title']}\n\nDue {row['due_at']:%Y-%m-%d %H:%M} UTC; "
                "see `leadstage tasks list --owner " + str(row["username"]) + "`.\n",
                now,
            )
            for row in rows
            if row["owner_email"]
        ]
        queued += uow.mail.enqueue(mails)
        after = int(rows[-1]["id"])
        uow.webhooks.set_cursor("mail-tasks", str(after))
        if len(rows) < BATCH:
            break
    return queued


def send(uow: UnitOfWork, mailer: Mailer, *, now: datetime, limit: int = 200) -> MailReport:
    report = MailReport()
    for mail in uow.mail.due(now, limit):
        error = mailer.send(mail["to_addr"], mail["subject"], mail["body"])
        attempts = int(mail["attempts"]) + 1
        if error is None:
            uow.mail.record(mail["id"], status="sent", attempts=attempts, sent_at=now, last_error=None)
            report.sent += 1
            continue
        gave_up = attempts >= MAX_ATTEMPTS
        uow.mail.record(
            mail["id"],
            status="failed" if gave_up else "pending",
            attempts=attempts,
            last_error=error[:500],
            next_attempt_at=now + timedelta(seconds=backoff_seconds(attempts)),
        )
        if gave_up:
            report.failed += 1
        else:
            report.retrying += 1
    return report


def run(uow: UnitOfWork, mailer: Mailer, now: datetime) -> dict[str, int]:
    """The tick's mail step."""
    queued = collect(uow, now=now)
    report = send(uow, mailer, now=now)
    report.queued = queued
    return report.as_dict()
