"""The page routers of the web workspace, in one list (``install`` adds them to the app)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from leadstage.web.base import Viewer, home_for, page_paths

router = APIRouter(include_in_schema=False)


@router.get("/")
def home(request: Request, user: Viewer) -> RedirectResponse:
    """Each role starts where its work is: sales in the work queue, marketing on the dashboard."""
    return RedirectResponse(home_for(user.role, page_paths(request)), status_code=303)


def routers() -> list[APIRouter]:
    from leadstage.web import dashboard, jobs, lead_page, leads, model_settings, settings, work

    return [
        router,
        leads.router,
        lead_page.router,
        work.router,
        dashboard.router,
        settings.router,
        model_settings.router,
        jobs.router,
    ]
