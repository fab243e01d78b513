"""The cost of the input policy (``klink.service.limits``) on a request the service parses.

Two FastAPI apps with the same routes, one behind ``InputPolicy`` and one without, called
in-process through httpx's ASGI transport in interleaved rounds, for bodies of about 200 B,
64 KiB and 900 KiB: "typed" (a model with an ``int`` and a ``bool``, validated strictly a second
time) and "free" (free JSON, as metadata values are). Figure: median time per request, policy
against none. Target: free <= 1.5x.

    .venv/bin/python bench/input_policy.py [--rounds 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from pydantic import BaseModel

from klink.service.limits import InputPolicy

RESULTS = Path(__file__).resolve().parent / "results" / "input_policy.json"


class Body(BaseModel):
    count: int
    dry_run: bool = False
    value: Any = None


class Free(BaseModel):
    value: Any = None  # free JSON, as metadata values are: no strict second validation


def make_app(policy: bool) -> FastAPI:
    app = FastAPI()

    @app.put("/things/{name}")
    def put(name: str, body: Body) -> dict[str, Any]:
        return {"name": name, "count": body.count}

    @app.put("/free/{name}")
    def put_free(name: str, body: Free) -> dict[str, Any]:
        return {"name": name}

    if policy:
        app.add_middleware(InputPolicy, max_body_bytes=1024 * 1024)
    return app


def body_of(size: int) -> bytes:
    items = [{"key": f"k{i}", "tags": ["a", "b", "c"], "n": i, "ok": True} for i in range(10_000)]
    out: list[Any] = []
    raw = b""
    for item in items:
        out.append(item)
        raw = json.dumps({"count": 3, "value": out}).encode()
        if len(raw) >= size:
            break
    return raw


async def run(rounds: int) -> dict[str, Any]:
    clients = {
        name: httpx.AsyncClient(
            transport=httpx.ASGITransport(app=make_app(name == "policy")), base_url="http://bench"
        )
        for name in ("none", "policy")
    }
    sizes = {"200B": body_of(200), "64KiB": body_of(64 * 1024), "900KiB": body_of(900 * 1024)}
    cases = [(f"{size} typed", "/things/x", raw) for size, raw in sizes.items()]
    cases += [(f"{size} free", "/free/x", raw) for size, raw in sizes.items()]
    times = {case: {"none": [], "policy": []} for case, _, _ in cases}
    headers = {"content-type": "application/json"}
    for index in range(rounds):
        for case, path, raw in cases:
            order = list(clients.items())
            if index % 2:
                order.reverse()  # neither app always goes first
            for name, client in order:
                start = time.perf_counter()
                response = await client.put(path, content=raw, headers=headers)
                times[case][name].append(time.perf_counter() - start)
                assert response.status_code == 200, response.text
    for client in clients.values():
        await client.aclose()
    figures = {}
    for (case, _, raw), by in zip(cases, times.values(), strict=True):
        none, policy = statistics.median(by["none"]), statistics.median(by["policy"])
        figures[case] = {
            "bytes": len(raw),
            "none_ms": round(none * 1000, 3),
            "policy_ms": round(policy * 1000, 3),
            "ratio": round(policy / none, 2),
        }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    figures = asyncio.run(run(args.rounds))
    print(f"{'body':>13} {'bytes':>8} {'none ms':>9} {'policy ms':>10} {'ratio':>6}")
    for case, f in figures.items():
        print(f"{case:>13} {f['bytes']:>8} {f['none_ms']:>9} {f['policy_ms']:>10} {f['ratio']:>6}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": f"{platform.machine()}, Python {platform.python_version()}",
                "rounds": args.rounds,
                "figures": figures,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
