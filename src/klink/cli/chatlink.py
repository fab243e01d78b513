"""``klink chat link CODE``: confirm, with your own token, that a chat user acts as you.

The chat service showed the code to that chat user (``/klink link``); this sends it with this
command's token, so the link names the token's identity and nobody else's.
"""

from __future__ import annotations

from klink.cli.api import client_for
from klink.cli.output import emit_json, say

TYPE_CHECKING = False
if TYPE_CHECKING:
    from klink.cli.parse import Args


def _link(args: Args) -> int:
    result = client_for(args).call("POST", "/chat/link", json={"code": args.code})
    if args.json:
        emit_json(result)
    else:
        say(f"{result['chatUser']} now acts as {result['identity']} ({result['role']})")
    return 0
