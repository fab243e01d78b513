"""One reconcile step, free of HTTP: definition + environment + provider → plan → apply.

The API and the drift scheduler fetch the file and the environment record, then call these;
tests call them directly with a real provider.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from klink.errors import Conflict
from klink.infra.apply import ApplyResult, apply_plan
from klink.infra.live import Cloud, prepare, read_live
from klink.infra.model import parse_definition
from klink.infra.plan import Plan, build_plan


def plan_for(data: Any, app: str, env: str, env_metadata: Mapping[str, Any], cloud: Cloud) -> Plan:
    """The plan of ``app`` in ``env``: the definition (parsed YAML or text) against live state."""
    definition = parse_definition(data, app, env, env_metadata.get("infra"))
    definition = prepare(definition, cloud)
    return build_plan(definition, read_live(definition, cloud))


def apply_for(
    data: Any,
    app: str,
    env: str,
    env_metadata: Mapping[str, Any],
    cloud: Cloud,
    *,
    plan_hash: str | None = None,
) -> tuple[Plan, ApplyResult]:
    """Plan again from live state and apply; with ``plan_hash``, refuse (Conflict) when the plan
    is no longer the one that was shown."""
    plan = plan_for(data, app, env, env_metadata, cloud)
    if plan_hash is not None and plan.plan_hash != plan_hash:
        raise Conflict(
            "the plan changed since it was shown (the definition or live state moved); "
            "look at the new plan and apply that",
            field="plan_hash",
        )
    return plan, apply_plan(plan, cloud)
