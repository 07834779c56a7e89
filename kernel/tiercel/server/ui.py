"""The web UI: the built single-page app under ``/ui/``, ``/`` redirecting there.

The app is built from ``ui/`` (``scripts/build-ui``) into ``tiercel/ui/static`` and ships in the
wheel, so serving it needs no Node. Any path under ``/ui/`` that is not a built file answers the
app's ``index.html`` (the client router shows the page: a deep link reloads to the same view).
A checkout where the UI was never built answers a page saying how to build it, not an error.
Every page carries a strict Content-Security-Policy: scripts, styles, images and API calls
only from this server.
"""

from __future__ import annotations

import html
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

#: Where the build puts the app (``ui/vite.config.js`` writes here).
STATIC = Path(__file__).resolve().parent.parent / "ui" / "static"

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; worker-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
HEADERS = {"Content-Security-Policy": CSP}
#: Built assets have content hashes in their names: cache them for a year; index.html never.
IMMUTABLE = {**HEADERS, "Cache-Control": "public, max-age=31536000, immutable"}
NO_CACHE = {**HEADERS, "Cache-Control": "no-cache"}

NOT_BUILT = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Tiercel: UI not built</title></head>
<body style="font-family:sans-serif;max-width:40em;margin:3em auto">
<h1>UI not built</h1>
<p>This Tiercel runs from a source checkout where the web UI has not been built
(no <code>{where}</code>).</p>
<p>Run <code>scripts/build-ui</code> (it runs <code>npm ci &amp;&amp; npm run build</code> in <code>ui/</code>;
needs Node 20), then reload this page. The API is available at <a href="/api/v1/docs">/api/v1/docs</a>.</p>
</body></html>"""


def ui_routes(static: Path = STATIC) -> list[Route]:
    """``/`` and ``/ui/…`` serving the app built into *static*."""
    root = static.resolve()

    async def home(request: Request) -> Response:
        return RedirectResponse("/ui/", status_code=307)

    async def page(request: Request) -> Response:
        index = root / "index.html"
        if not index.is_file():
            return HTMLResponse(NOT_BUILT.format(where=html.escape(str(index))), status_code=503, headers=NO_CACHE)
        rel = request.path_params.get("path", "")
        target = (root / rel).resolve()
        if rel and target.is_file() and target.is_relative_to(root):
            cache = IMMUTABLE if rel.startswith("assets/") else NO_CACHE
            return FileResponse(target, headers=cache)
        if rel.startswith("assets/"):  # a stale chunk name: the app must not get index.html as JavaScript
            return Response("not found", status_code=404, media_type="text/plain", headers=NO_CACHE)
        return FileResponse(index, headers=NO_CACHE)

    return [
        Route("/", home, methods=["GET"]),
        Route("/ui", home, methods=["GET"]),
        Route("/ui/{path:path}", page, methods=["GET"]),
    ]
