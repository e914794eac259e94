"""E-mail notifications through the outbox, delivered to a real SMTP server the test starts."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller

from leadstage.adapters.mail import SmtpMailer
from leadstage.bootstrap import Container
from leadstage.domain.stages import Actor, Role
from leadstage.domain.tasks import Task, TaskKind
from leadstage.services import leads as lead_service
from leadstage.services import notifications, routing
from leadstage.services import users as user_service
from tests.conftest import NOW

ADMIN = Actor("admin", Role.ADMIN)


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], str]] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        content = envelope.content.decode()  # type: ignore[attr-defined]
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), content))  # type: ignore[attr-defined]
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def test_the_owner_of_a_routed_mql_and_the_manager_of_a_breach_get_one_mail_each(
    container: Container, smtp
) -> None:
    inbox, port = smtp
    mailer = SmtpMailer("127.0.0.1", port, "leadstage@example.org")
    with container.uow(write=True) as uow:
        rita = user_service.add_user(
            uow,
            username="rita",
            role="sales_rep",
            team=None,
            password_hash=None,
            at=NOW,
            email="rita@example.org",
        )
        max_ = user_service.add_user(
            uow,
            username="max",
            role="sales_manager",
            team=None,
            password_hash=None,
            at=NOW,
            email="max@example.org",
        )
        lead_service.upsert_lead(
            uow,
            lead_service.LeadInput(email="ana@acme.example", first_name="Ana", company="Acme"),
            normalizer=container.identity,
            at=NOW,
        )
        uow.commit()
        assert notifications.run(uow, mailer, NOW)["queued"] == 0  # the first run starts at the present
        uow.commit()
        routing.assign_lead(uow, "ana@acme.example", user="rita", team=None, actor=ADMIN, at=NOW)
        uow.tasks.add(
            Task(
                kind=TaskKind.SLA_BREACH,
                title="Rita missed the first response for lead 1",
                due_at=NOW,
                created_at=NOW,
                created_by="system",
                lead_id=1,
                owner_id=max_.id,
                key="sla:test",
            )
        )
        uow.commit()
        assert rita.id is not None
    with container.uow(write=True) as uow:
        report = notifications.run(uow, mailer, NOW + timedelta(minutes=1))
        uow.commit()
    assert report == {"queued": 2, "sent": 2, "retrying": 0, "failed": 0}
    to = sorted(
        (rcpt[0], content.split("Subject: ", 1)[1].splitlines()[0]) for _f, rcpt, content in inbox.messages
    )
    assert to == [
        ("max@example.org", "First response missed: lead 1"),
        ("rita@example.org", "New MQL for you: Ana (Acme)"),
    ]
    with container.uow(write=True) as uow:  # again: nothing new, nothing sent twice
        assert notifications.run(uow, mailer, NOW + timedelta(minutes=2)) == {
            "queued": 0,
            "sent": 0,
            "retrying": 0,
            "failed": 0,
        }


def test_an_unreachable_mail_server_means_a_retry_later_not_a_lost_mail(container: Container, smtp) -> None:
    inbox, port = smtp
    with container.uow(write=True) as uow:
        user_service.add_user(
            uow,
            username="max",
            role="sales_manager",
            team=None,
            password_hash=None,
            at=NOW,
            email="max@example.org",
        )
        notifications.collect(uow, now=NOW)
        uow.tasks.add(
            Task(
                kind=TaskKind.SLA_BREACH,
                title="missed",
                due_at=NOW,
                created_at=NOW,
                created_by="system",
                owner_id=1,
                key="k",
            )
        )
        uow.commit()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = int(s.getsockname()[1])
    with container.uow(write=True) as uow:
        assert (
            notifications.run(uow, SmtpMailer("127.0.0.1", dead, "x@example.org", timeout=2), NOW)["retrying"]
            == 1
        )
        uow.commit()
    with container.uow(write=True) as uow:
        assert (
            notifications.run(
                uow, SmtpMailer("127.0.0.1", port, "x@example.org"), NOW + timedelta(minutes=5)
            )["sent"]
            == 1
        )
        uow.commit()
    assert len(inbox.messages) == 1
