"""The alert desk: grid workers handle their alerts in a browser, services score over HTTP.

``escalation-risk serve --store URL --model DIR --data DIR`` runs :func:`create_app` under
uvicorn: server-rendered pages for workers and supervisors (Chinese first, phone-sized,
no script needed) and a JSON API (``POST /api/v1/score``, ``GET /api/v1/alerts``) with
bearer tokens. Users, sessions, tokens and the access log live in the alert store
(:mod:`.users`); every action on an alert goes through the store's lifecycle.
"""

from .app import create_app
from .service import Desk
from .users import ROLES, SCOPES, Directory, User, UserError

__all__ = ["create_app", "Desk", "Directory", "User", "UserError", "ROLES", "SCOPES"]
