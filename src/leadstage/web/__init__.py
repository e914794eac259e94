"""The web workspace (issue 8): server-rendered pages (Jinja2 + htmx) over the same services as the API.

Pages live beside the API on one port. :func:`install` adds the static files (htmx vendored under
``static/vendor``, nothing loaded from elsewhere), the page routers and the HTML error pages. Business
rules stay in the services and the domain: a page reads, calls a service, and renders what came back.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles


def install(app: FastAPI) -> None:
    """Add the web workspace to the app (after the API's routers and error handlers)."""
    from leadstage.web import errors, pages
    from leadstage.web.base import STATIC_DIR

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    errors.install(app)
    paths: set[str] = set()
    for router in pages.routers():
        app.include_router(router)
        paths.update(getattr(route, "path", "") for route in router.routes)
    app.state.web_page_paths = frozenset(paths)  # the menu offers only pages that exist
