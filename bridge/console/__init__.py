"""The ops console (FastAPI): orders and their timelines, graphs and links, and the
pending manual reviews with approve and reject. See docs/console.md.

``create_app(ConsoleSettings(...))`` gives the ASGI app; ``stepsaga console`` serves it.
"""

from ._app import create_app
from ._auth import Principal
from ._settings import ROLES, ConsoleSettings, Role, TokenGrant

__all__ = ["ROLES", "ConsoleSettings", "Principal", "Role", "TokenGrant", "create_app"]
