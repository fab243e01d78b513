"""The metadata service's HTTP API (mounted at ``/metadata``).

``/applications`` and ``/environments`` share one shape, built by ``_routes(kind)``:
list (names, ``?view=full``, ``?where=KEY=VALUE``), POST/PUT/GET/DELETE a record, GET/PUT/DELETE
one key (body ``{"value": <any JSON>}``) and the record's history. Reads need ``reader``,
changes ``admin``; every change records the token's name as the actor.

Creating is ``POST /{plural}`` with ``{"name", "metadata"}``: atomic, 201 for exactly one of
any number of concurrent creators and 409 ``exists`` for the others. ``PUT /{plural}/{name}``
is the explicit upsert (create, 201, or replace the whole metadata, 200) for scripts that
converge a record to a known state, such as the quickstart.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response
from pydantic import BaseModel, Field

from klink.auth.tokens import Principal
from klink.config.appcreated import create_config_repos
from klink.errors import InvalidInput
from klink.metadata.keys import KEY_RULE
from klink.metadata.store import MetadataStore, Record
from klink.names import NAME_RULE, check_name
from klink.service import Runtime, admin, make_service, reader, runtime_of
from klink.service.openapi import errors

# Documented rules of the path (checked by the store, which names the field in its 400).
RecordName = Annotated[str, Path(json_schema_extra={"pattern": NAME_RULE, "maxLength": 32})]
Key = Annotated[str, Path(json_schema_extra={"pattern": KEY_RULE, "maxLength": 128})]

# Hooks run after an application is created: (runtime, record, actor). The config service
# registers one that creates the application's config repositories.
APP_CREATED_HOOKS: list[Callable[[Runtime, Record], None]] = []
APP_CREATED_HOOKS.append(create_config_repos)


class RecordBody(BaseModel):
    metadata: dict[str, Any] = Field(default_factory=dict)


class CreateBody(RecordBody):
    name: str = Field(description="the new record's name (^[a-z][a-z0-9]{0,31}$)")


class ValueBody(BaseModel):
    value: Any = Field(...)


def _store(request: Request) -> MetadataStore:
    return MetadataStore(runtime_of(request).engine)


def _parse_where(where: str | None) -> tuple[str, Any] | None:
    if where is None:
        return None
    key, sep, raw = where.partition("=")
    if not sep or not key:
        raise InvalidInput("where must be KEY=VALUE", field="where")
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return key, value


def _routes(kind: str, plural: str) -> APIRouter:
    router = APIRouter(prefix=f"/{plural}", tags=[plural])

    @router.get("")
    def list_records(
        request: Request,
        _p: Annotated[Principal, Depends(reader)],
        view: Annotated[str, Query(pattern="^(names|full)$")] = "names",
        where: str | None = None,
    ) -> dict[str, Any]:
        records = _store(request).all(kind, _parse_where(where))
        if view == "full":
            return {plural: [r.to_json() for r in records]}
        return {plural: [r.name for r in records]}

    @router.post("", status_code=201, responses=errors(409))
    def create_record(
        body: CreateBody, request: Request, principal: Annotated[Principal, Depends(admin)]
    ) -> dict[str, Any]:
        """Create a record: 201, or 409 (``exists``) if one has the name, however many ask at
        once."""
        runtime = runtime_of(request)
        check_name(body.name, "name")
        record = _store(request).create(
            kind, body.name, body.metadata, actor=principal.name, at=runtime.clock()
        )
        _created(runtime, kind, record)
        return record.to_json()

    @router.put(
        "/{name}",
        responses={201: {"description": f"The {kind} was created"}},
    )
    def put_record(
        name: RecordName,
        request: Request,
        response: Response,
        principal: Annotated[Principal, Depends(admin)],
        body: RecordBody | None = None,
    ) -> dict[str, Any]:
        runtime = runtime_of(request)
        record, created = _store(request).put(
            kind, name, (body or RecordBody()).metadata, actor=principal.name, at=runtime.clock()
        )
        if created:
            response.status_code = 201
            _created(runtime, kind, record)
        return record.to_json()

    @router.get("/{name}")
    def get_record(
        name: RecordName, request: Request, _p: Annotated[Principal, Depends(reader)]
    ) -> dict[str, Any]:
        return _store(request).get(kind, name).to_json()

    @router.delete("/{name}", status_code=204)
    def delete_record(
        name: RecordName, request: Request, principal: Annotated[Principal, Depends(admin)]
    ) -> None:
        _store(request).delete(kind, name, actor=principal.name, at=runtime_of(request).clock())

    @router.get("/{name}/history")
    def get_history(
        name: RecordName,
        request: Request,
        _p: Annotated[Principal, Depends(reader)],
        limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
    ) -> dict[str, Any]:
        store = _store(request)
        store.get(kind, name)
        return {"history": store.history(kind, name, limit)}

    @router.get("/{name}/{key}")
    def get_key(
        name: RecordName, key: Key, request: Request, _p: Annotated[Principal, Depends(reader)]
    ) -> dict[str, Any]:
        record = _store(request).get(kind, name)
        if key not in record.metadata:
            raise_missing(kind, name, key)
        return {"key": key, "value": record.metadata[key]}

    @router.put("/{name}/{key}")
    def put_key(
        name: RecordName,
        key: Key,
        body: ValueBody,
        request: Request,
        principal: Annotated[Principal, Depends(admin)],
    ) -> dict[str, Any]:
        record = _store(request).set_key(
            kind, name, key, body.value, actor=principal.name, at=runtime_of(request).clock()
        )
        return {"key": key, "value": record.metadata[key]}

    @router.delete("/{name}/{key}", status_code=204)
    def delete_key(
        name: RecordName,
        key: Key,
        request: Request,
        principal: Annotated[Principal, Depends(admin)],
    ) -> None:
        _store(request).delete_key(
            kind, name, key, actor=principal.name, at=runtime_of(request).clock()
        )

    return router


def _created(runtime: Runtime, kind: str, record: Record) -> None:
    if kind == "application":
        for hook in APP_CREATED_HOOKS:
            hook(runtime, record)


def raise_missing(kind: str, name: str, key: str) -> None:
    from klink.errors import NotFound

    raise NotFound(f"{kind} {name!r} has no key {key!r}", field="key")


def create_app(runtime: Runtime) -> FastAPI:
    return make_service(
        "metadata",
        runtime,
        [_routes("application", "applications"), _routes("environment", "environments")],
        description="Applications and environments with schema-less JSON metadata",
    )
