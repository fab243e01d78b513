"""Request signatures, as Slack specifies them, for Slack's requests and Hubot's alike:
``v0=HMAC-SHA256(secret, "v0:{timestamp}:{raw body}")``, the timestamp within five minutes
(``slack_sdk``'s ``SignatureVerifier`` computes and compares in constant time). A front door
whose secret is not set does not exist (404); a request that does not verify is a 401, read
before anything else and acted on never."""

from __future__ import annotations

from fastapi import Request
from slack_sdk.signature import SignatureVerifier

from klink.errors import NotFound, Unauthorized


def valid(secret: str, body: bytes, timestamp: str | None, signature: str | None) -> bool:
    try:
        return SignatureVerifier(secret).is_valid(body, timestamp, signature)
    except (ValueError, TypeError):  # a timestamp that is not a number
        return False


async def verified_body(
    request: Request, secret: str, setting: str, timestamp_header: str, signature_header: str
) -> bytes:
    """The raw body of a request signed with ``secret`` (the value of ``setting``)."""
    if not secret:
        raise NotFound(f"this front door is not set up here ({setting})")
    body = await request.body()
    headers = request.headers
    if not valid(secret, body, headers.get(timestamp_header), headers.get(signature_header)):
        raise Unauthorized("bad or missing signature, or a stale timestamp")
    return body
