"""The REST API over HTTP (in-process ASGI client): authentication, roles, contract, batches, capture."""

from __future__ import annotations

import pytest

from tests.e2e.api.conftest import Api

PROBLEM = "application/problem+json"
ANA = {
    "email": "ana@acme-logistics.com",
    "first_name": "Ana",
    "job_title": "CFO",
    "company": "Acme Logistics",
}


def _lead(api: Api, body: dict[str, object] = ANA) -> dict[str, object]:
    r = api.client.post("/api/v1/leads", json=body, headers=api.headers())
    assert r.status_code in (200, 201), r.text
    return r.json()["lead"]


def test_health_is_public_and_everything_else_needs_a_valid_token(api: Api) -> None:
    assert api.client.get("/api/v1/health").json()["database"] == "ok"
    assert api.client.get("/api/openapi.json").status_code == 200
    for headers in ({}, {"Authorization": "Bearer lst_not-a-real-token"}, {"Authorization": "Basic eDp5"}):
        r = api.client.get("/api/v1/leads", headers=headers)
        assert r.status_code == 401
        assert r.headers["content-type"] == PROBLEM
        assert r.headers["www-authenticate"] == "Bearer"


def test_a_read_token_reads_but_may_not_write_and_a_revoked_token_stops_working(api: Api) -> None:
    assert api.client.get("/api/v1/leads", headers=api.headers("admin:read")).status_code == 200
    r = api.client.post("/api/v1/leads", json=ANA, headers=api.headers("admin:read"))
    assert r.status_code == 403
    assert "read-only" in r.json()["detail"]
    made = api.client.post("/api/v1/tokens", json={"user": "viewer-user"}, headers=api.headers()).json()
    who = api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {made['token']}"})
    assert who.json()["role"] == "viewer"
    api.client.delete(f"/api/v1/tokens/{made['id']}", headers=api.headers())
    assert (
        api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {made['token']}"}).status_code == 401
    )


def test_create_recognise_read_with_etag_and_transition_with_if_match(api: Api) -> None:
    first = api.client.post("/api/v1/leads", json=ANA, headers=api.headers())
    assert first.status_code == 201
    again = api.client.post(
        "/api/v1/leads", json={**ANA, "email": "Ana+x@ACME-logistics.com"}, headers=api.headers()
    )
    assert again.status_code == 200
    assert again.json()["lead"]["id"] == first.json()["lead"]["id"]
    got = api.client.get("/api/v1/leads/ana@acme-logistics.com", headers=api.headers())
    etag = got.headers["etag"]
    body = {"action": "promote_mql", "reason": "manual", "note": "met at the fair"}
    stale = api.client.post(
        "/api/v1/leads/ana@acme-logistics.com/transitions",
        json=body,
        headers={**api.headers(), "If-Match": '"v999"'},
    )
    assert stale.status_code == 412
    assert stale.headers["content-type"] == PROBLEM
    assert (
        api.client.get("/api/v1/leads/ana@acme-logistics.com", headers=api.headers()).headers["etag"] == etag
    )
    moved = api.client.post(
        "/api/v1/leads/ana@acme-logistics.com/transitions",
        json=body,
        headers={**api.headers(), "If-Match": etag},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["lead"]["stage"] == "mql"
    assert moved.headers["etag"] != etag
    refused = api.client.post(
        "/api/v1/leads/ana@acme-logistics.com/transitions", json={"action": "win"}, headers=api.headers()
    )
    assert refused.status_code == 422  # win needs an amount: input is checked before the state
    not_now = api.client.post(
        "/api/v1/leads/ana@acme-logistics.com/transitions",
        json={"action": "open_opportunity", "amount": "10", "currency": "EUR", "close_date": "2027-01-01"},
        headers=api.headers(),
    )
    assert not_now.status_code == 409
    assert "accept" in not_now.json()["allowed_actions"]


@pytest.mark.parametrize(
    ("role", "path", "body", "status"),
    [
        ("viewer", "/api/v1/leads", ANA, 403),
        (
            "marketing",
            "/api/v1/leads/ana@acme-logistics.com/qualification",
            {"criteria": {"need": "confirmed"}},
            403,
        ),
        ("sales_rep", "/api/v1/leads/ana@acme-logistics.com/forget", None, 403),
        ("sales_rep", "/api/v1/users", {"username": "x1", "role": "viewer"}, 403),
        ("viewer", "/api/v1/segments", {"name": "s", "filter": "stage = mql"}, 403),
        ("marketing", "/api/v1/leads/ana@acme-logistics.com/transitions", {"action": "accept"}, 403),
    ],
)
def test_roles_are_enforced_on_the_server(api: Api, role: str, path: str, body: object, status: int) -> None:
    _lead(api)
    promote = {"action": "promote_mql", "reason": "manual", "note": "n"}
    api.client.post("/api/v1/leads/ana@acme-logistics.com/transitions", json=promote, headers=api.headers())
    before = api.client.get("/api/v1/leads/ana@acme-logistics.com", headers=api.headers()).json()
    r = (
        api.client.post(path, json=body, headers=api.headers(role))
        if body
        else api.client.post(path, headers=api.headers(role))
    )
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    after = api.client.get("/api/v1/leads/ana@acme-logistics.com", headers=api.headers()).json()
    assert after["version"] == before["version"]


def test_bad_input_gets_a_problem_naming_the_field_and_stores_nothing(api: Api) -> None:
    h = api.headers()
    unknown = api.client.post("/api/v1/leads", json={**ANA, "colour": "red"}, headers=h)
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "colour"
    malformed = api.client.post(
        "/api/v1/leads", content=b"{not json", headers={**h, "Content-Type": "application/json"}
    )
    assert malformed.status_code == 422
    wrong_type = api.client.post(
        "/api/v1/leads", content=b"email=x", headers={**h, "Content-Type": "text/plain"}
    )
    assert wrong_type.status_code == 415
    huge = api.client.post(
        "/api/v1/leads", content=b"x" * 6_000_000, headers={**h, "Content-Type": "application/json"}
    )
    assert huge.status_code == 413
    too_many = {
        "activities": [{"email": "a@b.co", "type": "page_view", "occurred_at": "2026-01-01T00:00:00Z"}] * 1001
    }
    assert api.client.post("/api/v1/activities/batch", json=too_many, headers=h).status_code == 422
    bad_filter = api.client.get("/api/v1/leads", params={"filter": "stage = nowhere"}, headers=h)
    assert bad_filter.status_code == 422
    assert api.client.get("/api/v1/leads", headers=h).json()["total"] == 0


def test_a_retried_activity_batch_adds_nothing_twice_and_rejects_come_back_with_reasons(api: Api) -> None:
    _lead(api)
    batch = {
        "activities": [
            {
                "email": "ana@acme-logistics.com",
                "type": "webinar_attended",
                "occurred_at": "2026-10-01T10:00:00Z",
                "idempotency_key": "w1",
            },
            {
                "email": "ana@acme-logistics.com",
                "type": "page_view",
                "occurred_at": "2026-10-02T10:00:00Z",
                "properties": {"page": "/pricing"},
            },
            {"email": "nobody@nowhere.example", "type": "page_view", "occurred_at": "2026-10-02T10:00:00Z"},
        ]
    }
    first = api.client.post("/api/v1/activities/batch", json=batch, headers=api.headers()).json()
    assert (first["created"], first["rejected"]) == (2, 1)
    assert "nobody@nowhere.example" in str(first["rejects"][0])
    second = api.client.post("/api/v1/activities/batch", json=batch, headers=api.headers()).json()
    assert (second["created"], second["unchanged"]) == (0, 2)
    api.settle()  # (stored from the inbox now rather than within a second: ADR 24)
    shown = api.client.get("/api/v1/leads/ana@acme-logistics.com", headers=api.headers()).json()
    assert shown["activity_count"] == 2


def test_cursor_pagination_walks_every_lead_once(api: Api) -> None:
    batch = {"leads": [{"email": f"p{i}@example.org", "source": "event"} for i in range(7)]}
    assert api.client.post("/api/v1/leads/batch", json=batch, headers=api.headers()).json()["created"] == 7
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, object] = {"limit": 3, "order": "-id", **({"cursor": cursor} if cursor else {})}
        page = api.client.get("/api/v1/leads", params=params, headers=api.headers()).json()
        seen += [it["id"] for it in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen, reverse=True)
    assert len(seen) == len(set(seen)) == 7
    filtered = api.client.get(
        "/api/v1/leads", params={"filter": 'email contains "p3@"'}, headers=api.headers()
    ).json()
    assert [it["email"] for it in filtered["items"]] == ["p3@example.org"]


def test_form_capture_is_public_redirects_browsers_and_keeps_bots_and_floods_out(api: Api) -> None:
    form = api.client.post("/api/v1/tokens", json={"user": "admin-user"}, headers=api.headers())  # warm-up
    assert form.status_code == 201
    from leadstage.bootstrap import build
    from leadstage.config import Settings
    from leadstage.domain.stages import Actor, Role
    from leadstage.services import access
    from tests.conftest import NOW

    c = build(Settings(database_url=api.db_url))
    with c.uow() as uow:
        made = access.create_form(
            uow,
            "Pricing eBook",
            actor=Actor("admin", Role.ADMIN),
            at=NOW,
            source="ebook",
            redirect_url="/thanks",
        )
        uow.commit()
    c.close()
    url = f"/api/v1/capture/{made.key}"
    posted = api.client.post(
        url,
        data={"email": "eve@retail.example", "first_name": "Eve", "Interest": "pricing", "_hp": ""},
        follow_redirects=False,
    )
    assert posted.status_code == 303
    assert posted.headers["location"] == "/thanks"
    eve = api.client.get("/api/v1/leads/eve@retail.example?include=activities", headers=api.headers()).json()
    assert eve["properties"]["Interest"] == "pricing"
    assert [a["type"] for a in eve["activities"]] == ["form_submit"]
    assert eve["activities"][0]["content"] == "Pricing eBook"
    bot = api.client.post(
        url, data={"email": "bot@spam.example", "_hp": "http://spam"}, follow_redirects=False
    )
    assert bot.status_code == 303
    assert api.client.get("/api/v1/leads/bot@spam.example", headers=api.headers()).status_code == 404
    as_json = api.client.post(url, json={"email": "joe@retail.example"})
    assert as_json.status_code == 201
    assert api.client.post("/api/v1/capture/nosuchform", json={"email": "x@y.example"}).status_code == 404
    codes = [api.client.post(url, json={"email": f"f{i}@retail.example"}).status_code for i in range(6)]
    assert 429 in codes  # five per minute per address in this test


def test_a_lead_is_edited_with_if_match_and_identifiers_stay_put(api: Api) -> None:
    _lead(api)
    url = "/api/v1/leads/ana@acme-logistics.com"
    etag = api.client.get(url, headers=api.headers()).headers["etag"]
    changed = api.client.patch(
        url,
        json={"job_title": "CEO", "properties": {"Budget Band": "100k", "Old": None}},
        headers={**api.headers(), "If-Match": etag},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["lead"]["job_title"] == "CEO"
    stale = api.client.patch(url, json={"job_title": "CTO"}, headers={**api.headers(), "If-Match": etag})
    assert stale.status_code == 412
    assert api.client.get(url, headers=api.headers()).json()["properties"]["Budget Band"] == "100k"
    assert api.client.patch(url, json={"email": "x@y.example"}, headers=api.headers()).status_code == 422
    assert api.client.patch(url, json={"job_title": "X"}, headers=api.headers("viewer")).status_code == 403


def test_health_metrics_and_request_ids(api: Api) -> None:
    health = api.client.get("/api/v1/health").json()
    assert (health["database"], health["background_loop"]) == ("ok", "off")  # the tests turn the loop off
    r = api.client.get("/api/v1/leads", headers={**api.headers(), "X-Request-ID": "trace-42"})
    assert r.headers["x-request-id"] == "trace-42"
    assert len(api.client.get("/api/v1/health").headers["x-request-id"]) == 16
    assert api.client.get("/metrics").status_code == 401
    assert api.client.get("/metrics", headers=api.headers("marketing")).status_code == 403
    text = api.client.get("/metrics", headers=api.headers("admin:read")).text
    assert 'leadstage_http_requests_total{method="GET",route="/api/v1/leads",status="200"} 1' in text
    assert "leadstage_outbox_backlog 0" in text


def test_times_are_iso_text_never_bare_numbers(api: Api) -> None:
    assert api.client.get("/api/v1/audit", params={"since": "0.5"}, headers=api.headers()).status_code == 422
    assert (
        api.client.get(
            "/api/v1/audit", params={"since": "2026-01-01T00:00:00Z"}, headers=api.headers()
        ).status_code
        == 200
    )
    for wrong in (
        "1700000000",
        1700000000,
        "2026-02-30T10:00:00Z",
        "20261001T100000Z",
        "2026-10-01T10Z",
        "today",
    ):
        bad = {"activities": [{"email": "a@b.example", "type": "page_view", "occurred_at": wrong}]}
        r = api.client.post("/api/v1/activities/batch", json=bad, headers=api.headers())
        assert r.status_code == 422, (wrong, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["errors"][0]["field"] == "activities.0.occurred_at", r.json()


def test_activity_times_in_a_batch_keep_their_instant_whatever_their_form(api: Api) -> None:
    _lead(api)
    forms = {
        "z": "2026-10-01T10:00:00Z",
        "offset": "2026-10-01T12:00:00+02:00",  # the same instant
        "fraction": "2026-10-01T10:00:00.250Z",
        "negative": "2026-10-01T05:30:00-04:30",
    }
    batch = {
        "activities": [
            {
                "email": "ana@acme-logistics.com",
                "type": "page_view",
                "occurred_at": at,
                "idempotency_key": key,
            }
            for key, at in forms.items()
        ]
    }
    r = api.client.post("/api/v1/activities/batch", json=batch, headers=api.headers())
    assert (r.status_code, r.json()["created"]) == (200, 4), r.text  # one key each: four events
    api.settle()
    shown = api.client.get(
        "/api/v1/leads/ana@acme-logistics.com/activities", params={"limit": 10}, headers=api.headers()
    ).json()
    times = sorted(a["occurred_at"] for a in shown["items"])
    assert times == [
        "2026-10-01T10:00:00+00:00",
        "2026-10-01T10:00:00+00:00",
        "2026-10-01T10:00:00+00:00",
        "2026-10-01T10:00:00.250000+00:00",
    ]
