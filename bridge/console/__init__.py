"""The ops console (FastAPI): orders and their timelines, why each is where it is, its
graphs and links; the manual reviews with approve and reject (confirmed, audited); and
the audit log. Secure by default: signed sessions, CSRF and origin checks, a strict
Content-Security-Policy, no CDN. See docs/console.md.

``create_app(ConsoleSettings(...))`` gives the ASGI app; ``stepsaga console`` serves it.
"""

from ._app import create_app
from ._auth import Principal
from ._deps import FormAction, api_action, api_reader, form_action, page_reader
from ._limits import BodySizeLimit
from ._settings import ROLES, ConsoleSettings, Role, TokenGrant

__all__ = [
    "ROLES",
    "BodySizeLimit",
    "ConsoleSettings",
    "FormAction",
    "Principal",
    "Role",
    "TokenGrant",
    "api_action",
    "api_reader",
    "create_app",
    "form_action",
    "page_reader",
]
