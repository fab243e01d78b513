"""The CLI's HTTP/1.1 on a socket: one connection with buffered reads, and its responses.

``_socket`` for http (the ``socket`` module costs 5 ms of start-up for its enums), ``ssl`` over
``socket`` for https; bodies by length, chunked, or until the server closes; a streamed answer
read line by line as it arrives. Query and path encoding as urllib.parse does it (which costs
6 ms to import). ``klink.cli.api.Api`` is the client built on this.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any


class Wire:
    """One HTTP/1.1 connection with buffered reads."""

    def __init__(self, host: str, port: int, https: bool, timeout: float) -> None:
        self.buffer = b""
        if https:
            import socket
            import ssl

            raw = socket.create_connection((host, port), timeout)
            self.sock: Any = ssl.create_default_context().wrap_socket(raw, server_hostname=host)
            return
        import _socket

        problem: OSError = OSError(f"no address for {host}")
        # A str host makes getaddrinfo import the idna codec (re, unicodedata: 5 ms); bytes do not.
        name = host.encode("ascii") if host.isascii() else host.encode("idna")
        for family, kind, proto, _name, address in _socket.getaddrinfo(
            name, port, 0, _socket.SOCK_STREAM
        ):
            sock = _socket.socket(family, kind, proto)
            sock.settimeout(timeout)
            try:
                sock.connect(address)
            except OSError as exc:
                sock.close()
                problem = exc
                continue
            # Headers and a streamed body go in separate writes: no Nagle delay between them.
            sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
            self.sock = sock
            return
        raise problem

    def more(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buffer += chunk
        return bool(chunk)

    def readline(self) -> bytes:
        while b"\n" not in self.buffer:
            if not self.more():
                line, self.buffer = self.buffer, b""
                return line
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line + b"\n"

    def take(self, most: int) -> bytes:
        """Up to ``most`` bytes: what is buffered, else what the next read brings (b"": closed)."""
        if not self.buffer:
            self.more()
        piece, self.buffer = self.buffer[:most], self.buffer[most:]
        return piece

    def close(self) -> None:
        self.sock.close()


class Response:
    """What a request got back: status, headers and body (read, or a stream of lines)."""

    def __init__(self, wire: Wire, method: str) -> None:
        self.wire = wire
        status = wire.readline()
        if not status:
            raise ConnectionResetError("the server closed the connection")
        parts = status.decode("latin-1").rstrip("\r\n").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise ConnectionError(f"not an HTTP response: {status[:80]!r}")
        self.status_code = int(parts[1])
        self.reason_phrase = parts[2] if len(parts) > 2 else ""
        self.headers: dict[str, str] = {}
        while True:
            line = wire.readline().decode("latin-1").rstrip("\r\n")
            if not line:
                break
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self.chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        length = self.headers.get("content-length")
        self.left: int | None = int(length) if length and not self.chunked else None
        if method == "HEAD" or self.status_code in (204, 304) or self.status_code < 200:
            self.left = 0
        self.reusable = self.headers.get("connection", "").lower() != "close" and (
            self.chunked or self.left is not None
        )
        self.done = False
        self._content: bytes | None = None

    def pieces(self) -> Iterator[bytes]:
        """The body as it arrives (chunked, by length, or until the server closes)."""
        wire = self.wire
        while not self.done:
            if self.chunked:
                size = int(wire.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while wire.readline().strip():  # trailers
                        pass
                    self.done = True
                    return
                data = b""
                while len(data) < size:
                    piece = wire.take(size - len(data))
                    if not piece:
                        raise ConnectionResetError("the server closed the stream")
                    data += piece
                wire.readline()
                yield data
            elif self.left is not None:
                if self.left == 0:
                    self.done = True
                    return
                piece = wire.take(self.left)
                if not piece:
                    raise ConnectionResetError("the server closed the connection early")
                self.left -= len(piece)
                yield piece
            else:
                piece = wire.take(65536)
                if not piece:
                    self.done = True
                    return
                yield piece

    @property
    def content(self) -> bytes:
        if self._content is None:
            self._content = b"".join(self.pieces())
        return self._content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        from klink.cli import jsonlite

        return jsonlite.loads(self.content)

    def iter_lines(self) -> Iterator[str]:
        """Lines as they arrive (for live output of streamed responses)."""
        pending = b""
        for piece in self.pieces():
            pending += piece
            while b"\n" in pending:
                line, _, pending = pending.partition(b"\n")
                yield line.decode("utf-8", "replace").rstrip("\r")
        if pending:
            yield pending.decode("utf-8", "replace").rstrip("\r")


def quote(text: str) -> str:
    """Percent-encoding as urllib.parse.quote (urllib.parse costs 6 ms of start-up)."""
    out = []
    for byte in text.encode("utf-8"):
        char = chr(byte)
        out.append(char if char in _SAFE else f"%{byte:02X}")
    return "".join(out)


_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
PATH_SAFE = _SAFE | frozenset("/:@!$&'()*+,;=")


def query(params: dict[str, Any]) -> str:
    pairs = []
    for key, value in params.items():
        for item in value if isinstance(value, list | tuple) else [value]:
            pairs.append(f"{quote(str(key))}={quote(str(item))}".replace("%20", "+"))
    return "&".join(pairs)


def split_url(url: str) -> tuple[str, str, int | None, str] | None:
    """(scheme, host, port, path) of http(s)://HOST[:PORT][/PATH], else None."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("http", "https"):
        return None
    netloc, slash, path = rest.partition("/")
    if netloc.startswith("["):
        host, _, after = netloc[1:].partition("]")
        port_text = after.removeprefix(":")
    else:
        host, _, port_text = netloc.partition(":")
    if not host or (port_text and not port_text.isdigit()):
        return None
    return scheme, host, int(port_text) if port_text else None, slash + path
