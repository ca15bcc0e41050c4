"""The approval page: an ASGI app (Starlette) that teams mount in their own service.

``approval_app(router, ...)`` serves an inbox of the cases the signed-in
decider may decide, a page per case showing the exact redacted request, and
Approve / Reject through a sign-in, a signed link or Slack's buttons.  Needs
the ``web`` extra: ``pip install 'handrail[web]'``.  See ``docs/web.md``.
"""

try:
    import jinja2  # noqa: F401
    import python_multipart  # noqa: F401  (Starlette parses forms with it)
    import starlette  # noqa: F401
except ImportError as missing:  # pragma: no cover - exercised in a subprocess
    raise ImportError(
        f"handrail.web needs the 'web' extra ({missing.name} is missing): "
        "pip install 'handrail[web]'"
    ) from missing

from ._app import approval_app

__all__ = ["approval_app"]
