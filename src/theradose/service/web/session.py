"""Browser sessions on top of the service's login tokens, and CSRF tokens for forms.

A successful login issues an ordinary service token (:func:`theradose.service.auth.issue_token`) and
keeps it in an ``HttpOnly``, ``SameSite=Strict`` cookie; every page request authenticates that token
exactly as the JSON API authenticates a bearer token, so expiry, revocation and deactivated users behave
the same. Every form carries a CSRF token, an HMAC (server secret) of the session token's hash; the
login form, which has no session yet, uses a random double-submit cookie (OWASP CSRF Prevention Cheat
Sheet, "Signed Double-Submit Cookie").
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request

from theradose.service.auth import Principal, SessionExpired, authenticate_token, hash_token
from theradose.service.errors import ApiError

#: Name of the session cookie (holds the login token).
SESSION_COOKIE = "theradose_session"
#: Name of the cookie holding the login form's CSRF value.
LOGIN_CSRF_COOKIE = "theradose_login_csrf"
#: Cookie path: the pages only (the JSON API keeps using bearer tokens).
COOKIE_PATH = "/ui"


def session_token(request: Request) -> str | None:
    """The login token of the request's session cookie, or None."""
    token = request.cookies.get(SESSION_COOKIE)
    return token or None


def current_user(request: Request) -> Principal | None:
    """The logged-in user of a page request, or None (no cookie, expired, revoked, deactivated)."""
    token = session_token(request)
    if token is None:
        return None
    try:
        return authenticate_token(
            request.app.state.db, token, idle_timeout_min=request.app.state.settings.idle_timeout_min
        )
    except SessionExpired:
        request.state.session_expired = True
        return None
    except ApiError:
        return None


def csrf_token(request: Request) -> str:
    """The CSRF token for forms of the current session ('' without a session)."""
    token = session_token(request)
    if token is None:
        return ""
    keys = request.app.state.keys
    secret = keys.sub_key("csrf")
    digest = hash_token(token, keys)
    return hmac.new(secret, ("csrf:" + digest).encode("ascii"), hashlib.sha256).hexdigest()


def csrf_ok(request: Request, submitted: object) -> bool:
    """True when ``submitted`` is the session's CSRF token."""
    expected = csrf_token(request)
    return bool(expected) and isinstance(submitted, str) and hmac.compare_digest(expected, submitted)


def new_login_csrf() -> str:
    """A random value for the login form's double-submit cookie."""
    return secrets.token_urlsafe(24)


def login_csrf_ok(request: Request, submitted: object) -> bool:
    """True when the login form's hidden value matches its cookie."""
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    return bool(cookie) and isinstance(submitted, str) and hmac.compare_digest(cookie, submitted)
