"""Bake targets: ``local`` or ``aws:REGION``, derived from the environments.

An image is baked for one target. The known targets are those of the environments; without an
explicit choice, the one target of all environments is used, or the caller is told which
targets there are to choose from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from klink.errors import InvalidInput


@dataclass(frozen=True)
class Target:
    name: str  # "local" | "aws:REGION"
    provider: str  # "local" | "aws"
    region: str | None
    # The environments of this target: name -> metadata, sorted by name.
    envs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def first_env(self) -> tuple[str, Mapping[str, Any]]:
        name = sorted(self.envs)[0]
        return name, self.envs[name]

    @property
    def account_ids(self) -> list[str]:
        ids = {str(m["account_id"]) for m in self.envs.values() if m.get("account_id")}
        return sorted(ids)

    def bake_options(self) -> Mapping[str, Any]:
        """The ``bake`` metadata object of the target's first environment that has one."""
        for name in sorted(self.envs):
            options = self.envs[name].get("bake")
            if isinstance(options, Mapping):
                return options
        return {}


def target_name(metadata: Mapping[str, Any]) -> str | None:
    provider = metadata.get("provider")
    if provider == "local":
        return "local"
    if provider == "aws" and metadata.get("region"):
        return f"aws:{metadata['region']}"
    return None


def targets_of(environments: Sequence[Mapping[str, Any]]) -> dict[str, Target]:
    """``environments`` as the metadata service lists them (``{name, metadata}``)."""
    grouped: dict[str, dict[str, Mapping[str, Any]]] = {}
    for record in environments:
        metadata = record.get("metadata") or {}
        name = target_name(metadata)
        if name is not None:
            grouped.setdefault(name, {})[str(record["name"])] = metadata
    result = {}
    for name, envs in sorted(grouped.items()):
        provider, _, region = name.partition(":")
        result[name] = Target(name, provider, region or None, dict(sorted(envs.items())))
    return result


def choose(requested: str | None, known: Mapping[str, Target], field: str = "target") -> Target:
    if not known:
        raise InvalidInput(
            "no environment exists, so there is no target to bake for; create one first",
            field=field,
        )
    if requested:
        if requested in known:
            return known[requested]
        if requested in ("local", "aws"):
            matching = [t for t in known.values() if t.provider == requested]
            if len(matching) == 1:
                return matching[0]
        raise InvalidInput(
            f"target {requested!r} is not one of the environments' targets: {', '.join(known)}",
            field=field,
        )
    if len(known) == 1:
        return next(iter(known.values()))
    raise InvalidInput(
        f"the environments have several targets; choose one with --target: {', '.join(known)}",
        field=field,
    )
