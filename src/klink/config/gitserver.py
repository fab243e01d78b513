"""Git's smart HTTP protocol at ``/config/git/{app}-{env}.git/…``, served by ``git http-backend``.

Each request runs the real ``git http-backend`` as a CGI subprocess (argument list, no shell):
the request body streams into its stdin while its stdout streams back as the response, so a
large push or clone never sits in memory. Reads (``git-upload-pack``: clone, fetch, pull) need
a ``reader`` token; pushes (``git-receive-pack``) need ``admin`` or ``deployer`` on that
environment. The token is the password of HTTP basic auth (any user name) or a bearer token;
without one the answer is 401 with ``WWW-Authenticate: Basic`` so plain git asks its
credential helpers. What lands is then checked by the repository's pre-receive hook.

Every push is in the audit log (``klink.service.audit``) as ``git push`` on
``/config/repos/{app}/{env}``, with the token's name as the actor (the commits' authors are
what the pusher's git says, so they are recorded beside it, not instead of it) and the refs it
moved; a push that lands nothing (refused by the hook, not a fast-forward) has outcome 400.
Fetches and clones change nothing and are not recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from klink.auth.tokens import Principal
from klink.config import gitcmd
from klink.config.gitcmd import git_env
from klink.config.repos import ConfigRepos
from klink.errors import Forbidden, KlinkError, Unauthorized
from klink.service import audit, current_principal

_PATH_RE = re.compile(
    r"^(?:HEAD|info/refs|git-upload-pack|git-receive-pack|objects/info/[a-z-]+"
    r"|objects/[0-9a-f]{2}/[0-9a-f]{38}|objects/pack/pack-[0-9a-f]{40}\.(?:pack|idx))$"
)
_REALM = 'Basic realm="klink", charset="UTF-8"'

router = APIRouter(tags=["git"])


class _CgiResponse(StreamingResponse):
    """A streaming response that never reads from the client while it streams.

    ``http-backend`` answers with its headers before it has read the request (a push), and
    Starlette's ``StreamingResponse`` would meanwhile wait for a disconnect by calling
    ``receive()``, taking request body chunks away from the feeder; this one leaves ``receive``
    to the feeder alone.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        async for chunk in self.body_iterator:
            data = chunk if isinstance(chunk, bytes) else str(chunk).encode()
            await send({"type": "http.response.body", "body": data, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def _error(status: int, code: str, message: str, **headers: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


def _is_push(request: Request, path: str) -> bool:
    return path == "git-receive-pack" or request.query_params.get("service") == "git-receive-pack"


def _heads(git_dir: Path) -> dict[str, str]:
    done = gitcmd.run(git_dir, ["for-each-ref", "--format=%(objectname) %(refname)", "refs/"])
    pairs = (line.split(" ", 1) for line in done.stdout.decode().splitlines() if " " in line)
    return {ref: obj for obj, ref in pairs}


def _push_record(git_dir: Path, before: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """The outcome of a push and what it moved: refs (from/to) and the commits' own authors."""
    after = _heads(git_dir)
    moved = {
        ref: {"from": before.get(ref), "to": new}
        for ref, new in sorted(after.items())
        if before.get(ref) != new
    }
    authors: set[str] = set()
    for change in moved.values():
        span = [change["to"]] if change["from"] is None else [f"{change['from']}..{change['to']}"]
        log = gitcmd.run(
            git_dir, ["log", "--max-count=100", "--format=%an <%ae>", "--end-of-options", *span]
        )
        authors.update(log.stdout.decode(errors="replace").splitlines())
    return (200 if moved else 400), {"refs": moved, "authors": sorted(authors)}


def _authorize(request: Request, env: str, push: bool) -> Principal:
    principal = current_principal(request)
    if push:
        principal.require_deploy(env)
    else:
        principal.require("reader")
    return principal


def _cgi_env(
    request: Request, repos: ConfigRepos, repo: str, path: str, user: str
) -> dict[str, str]:
    env = {
        "GIT_PROJECT_ROOT": str(repos.root),
        "GIT_HTTP_EXPORT_ALL": "1",
        "GATEWAY_INTERFACE": "CGI/1.1",
        "REQUEST_METHOD": request.method,
        "PATH_INFO": f"/{repo}.git/{path}",
        "QUERY_STRING": request.url.query,
        "REMOTE_USER": user,
        "REMOTE_ADDR": request.client.host if request.client else "127.0.0.1",
        "CONTENT_TYPE": request.headers.get("content-type", ""),
        "SERVER_PROTOCOL": "HTTP/1.1",
    }
    if "content-length" in request.headers:
        env["CONTENT_LENGTH"] = request.headers["content-length"]
    for header, var in (
        ("content-encoding", "HTTP_CONTENT_ENCODING"),
        ("git-protocol", "GIT_PROTOCOL"),
    ):
        if header in request.headers:
            env[var] = request.headers[header]
    return git_env(env)


async def _feed(request: Request, stdin: asyncio.StreamWriter) -> None:
    try:
        async for chunk in request.stream():
            if chunk:
                stdin.write(chunk)
                await stdin.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, OSError):
            stdin.close()


def _parse_headers(raw: bytes) -> tuple[int, dict[str, str]]:
    status, headers = 200, {}
    for line in raw.decode("latin-1").split("\n"):
        name, sep, value = line.rstrip("\r").partition(":")
        if not sep:
            continue
        if name.lower() == "status":
            status = int(value.strip().split()[0])
        else:
            headers[name.strip()] = value.strip()
    return status, headers


async def serve(request: Request, repos: ConfigRepos, app: str, env: str, path: str) -> Response:
    if not _PATH_RE.fullmatch(path):
        return _error(404, "not_found", f"no git resource {path!r}")
    push = request.method == "POST" and path == "git-receive-pack"
    if push:
        audit.describe(request, action="git push", target=f"/config/repos/{app}/{env}")
    else:
        audit.skip(request)
    # Who asks comes first: an anonymous caller learns nothing, not even which repos exist.
    try:
        principal = _authorize(request, env, _is_push(request, path))
    except Unauthorized as exc:
        return _error(401, exc.code, exc.message, **{"WWW-Authenticate": _REALM})
    except Forbidden as exc:
        return _error(403, exc.code, exc.message)
    try:
        git_dir = repos.existing(app, env)
        before = await asyncio.to_thread(_heads, git_dir) if push else {}
    except KlinkError as exc:
        return _error(exc.status, exc.code, exc.message)
    proc = await asyncio.create_subprocess_exec(
        "git",
        "http-backend",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=_cgi_env(request, repos, git_dir.name.removesuffix(".git"), path, principal.name),
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    feeder = asyncio.create_task(_feed(request, proc.stdin))
    try:
        head = await proc.stdout.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        head = exc.partial
    except asyncio.LimitOverrunError:
        head = b""
    if b"\r\n\r\n" not in head and b"\n\n" not in head:
        feeder.cancel()
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        return _error(502, "command_failed", "git http-backend gave no answer")
    status, headers = _parse_headers(head)
    headers.pop("Content-Length", None)

    async def body() -> AsyncIterator[bytes]:
        assert proc.stdout is not None
        try:
            while chunk := await proc.stdout.read(65536):
                yield chunk
            await feeder
        except BaseException:
            feeder.cancel()
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            raise
        finally:
            await proc.wait()
            if push:
                outcome: int | None = None  # unknown: the entry keeps the HTTP status
                try:
                    outcome, detail = await asyncio.to_thread(_push_record, git_dir, before)
                except KlinkError as exc:
                    detail = {"error": f"could not read what landed: {exc.message}"}
                audit.describe(request, outcome=outcome, detail=detail)

    media_type: Any = headers.pop("Content-Type", None)
    return _CgiResponse(body(), status_code=status, headers=headers, media_type=media_type)
