"""Signing in: a Klink token, checked once against the auth service, kept in a signed cookie.

The cookie (``klink_session``) holds the token, its name and role, signed and timestamped with
itsdangerous under a secret kept in ``KLINK_HOME/web-secret`` (created on first start, mode
600; web processes that share a home share sessions). It is HttpOnly, SameSite=Strict, Secure
when the public URL is https, and lasts ``MAX_AGE`` seconds: a forged, altered or expired
cookie reads as no session, and the visitor is sent to sign in. Every page calls the services
with the session's token, so a revoked token stops working at once (the services answer 401).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE = "klink_session"
MAX_AGE = 12 * 3600


@dataclass(frozen=True)
class Session:
    token: str
    name: str
    role: str


def secret(home: Path) -> str:
    """The signing secret of ``home``, created on first use (readable by its owner only)."""
    path = home / "web-secret"
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32) + "\n")
    return path.read_text().strip()


class Sessions:
    def __init__(self, secret_key: str, *, secure: bool, max_age: int = MAX_AGE) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt="klink-web-session")
        self.secure = secure
        self.max_age = max_age

    def dump(self, session: Session) -> str:
        return self._serializer.dumps({"t": session.token, "n": session.name, "r": session.role})

    def load(self, cookie: str | None) -> Session | None:
        """The session in ``cookie``; None when missing, forged, altered or expired."""
        if not cookie:
            return None
        try:
            data: Any = self._serializer.loads(cookie, max_age=self.max_age)
        except BadSignature:  # SignatureExpired is a BadSignature
            return None
        if not isinstance(data, dict):
            return None
        token, name, role = data.get("t"), data.get("n"), data.get("r")
        if not all(isinstance(v, str) and v for v in (token, name, role)):
            return None
        return Session(token=str(token), name=str(name), role=str(role))

    def cookie_args(self) -> dict[str, Any]:
        return {
            "key": COOKIE,
            "max_age": self.max_age,
            "httponly": True,
            "samesite": "strict",
            "secure": self.secure,
            "path": "/",
        }
