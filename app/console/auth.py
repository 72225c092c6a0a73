"""Who is signed in to the console (``/ui/``): a session cookie holding a session token, the
same tokens ``/v1/access_token`` gives out (same store, same lifetime,
``QTHUMB_SESSION_TOKEN_TTL``). The cookie is HttpOnly and SameSite=Strict, Secure over HTTPS.
Forms that change something also carry a CSRF token derived from the session token, which a
page of another site can neither read nor guess. The sign-in form, before any session, carries
one too: an HMAC, keyed with a secret of the server's, of a nonce the form's page set in a
cookie of its own, so another site cannot sign a browser in to a key of its choosing."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from qthumb.app.tasks.store import TaskStore
from qthumb.app.tokens import is_token

COOKIE = "qthumb_console"
SIGNIN_COOKIE = "qthumb_signin"
SIGNIN_PATH = "/ui/signin"
SIGNIN_FORM_SECONDS = 3600


class SignInRequired(Exception):
    """No valid session: pages redirect to sign-in, endpoints answer 401."""


class BadCsrf(Exception):
    pass


@dataclass(frozen=True)
class Session:
    token: str
    api_key: str

    @property
    def csrf(self) -> str:
        return csrf_for(self.token)


def csrf_for(session_token: str) -> str:
    return hashlib.sha256(f"qthumb-console-csrf:{session_token}".encode()).hexdigest()


async def current_session(request: Request) -> Session:
    """The request's session, or ``SignInRequired``."""
    token = request.cookies.get(COOKIE, "")
    if not is_token(token):
        raise SignInRequired()
    store: TaskStore = request.app.state.store
    api_key = await run_in_threadpool(store.session_owner, token, time.time())
    if api_key is None:
        raise SignInRequired()
    return Session(token, api_key)


def server_secret(api_keys: Iterable[str]) -> bytes:
    """What sign-in tokens are keyed with: secret (derived from the API keys) and the same in
    every API replica configured alike, so a form from one is accepted by another."""
    joined = "\0".join(sorted(api_keys))
    return hashlib.sha256(f"qthumb-console-signin\0{joined}".encode()).digest()


def signin_csrf(secret: bytes, nonce: str) -> str:
    return hmac.new(secret, nonce.encode(), hashlib.sha256).hexdigest()


def new_signin_nonce() -> str:
    return secrets.token_hex(16)


def set_signin_cookie(response: Response, request: Request, nonce: str) -> None:
    """The sign-in form's nonce, which only pages of this site can have sent back."""
    response.set_cookie(
        SIGNIN_COOKIE,
        nonce,
        max_age=SIGNIN_FORM_SECONDS,
        path=SIGNIN_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def check_signin_csrf(request: Request, secret: bytes, sent: object) -> None:
    nonce = request.cookies.get(SIGNIN_COOKIE, "")
    expected = signin_csrf(secret, nonce)
    if not nonce or not isinstance(sent, str) or not hmac.compare_digest(sent, expected):
        raise BadCsrf()


def check_csrf(session: Session, sent: object) -> None:
    if not isinstance(sent, str) or not hmac.compare_digest(sent, session.csrf):
        raise BadCsrf()


def set_cookie(response: Response, request: Request, token: str, max_age: int) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def clear_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
