"""Request signatures, as Slack specifies them, for Slack's requests and Hubot's alike:
``v0=HMAC-SHA256(secret, "v0:{timestamp}:{raw body}")``, the timestamp within five minutes
(``slack_sdk``'s ``SignatureVerifier`` computes and compares in constant time)."""

from __future__ import annotations

from slack_sdk.signature import SignatureVerifier


def valid(secret: str, body: bytes, timestamp: str | None, signature: str | None) -> bool:
    try:
        return SignatureVerifier(secret).is_valid(body, timestamp, signature)
    except (ValueError, TypeError):  # a timestamp that is not a number
        return False
