"""``infrastructure.yaml``: safe-loaded, validated, resolved into a ``Definition``.

At push time the config service runs ``config_problems`` on the file alone: YAML (duplicate keys
are an error, not a silent override), the JSON Schema of ``schema.py`` and the references inside
the file (``resolve.py``). When planning, ``parse_definition(text, app, env, env_infra)`` also
checks that every name belongs to the app (``{app}`` or ``{app}-…``, so two apps can never fight
over one load balancer) and resolves what the file takes from the environment record's ``infra``
metadata (shared security groups, named ingress rule sets, subnet sets, named and default role
policies, the VPC). Every problem names its field as a dotted path; all are reported at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from klink.errors import InvalidInput
from klink.infra import schema
from klink.infra.resolve import Problem, Resolver
from klink.infra.resources import Definition

FILE_NAME = "infrastructure.yaml"


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys (plain YAML keeps the last silently)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _value in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return dict(loader.construct_mapping(node))


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def load_yaml(text: str | bytes) -> Any:
    """Safe-load YAML; InvalidInput naming the file on a syntax error."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{FILE_NAME} is not valid YAML: {exc}", field=FILE_NAME) from None


def _path(parts: Sequence[Any]) -> str:
    return ".".join(str(p) for p in parts)


def _schema_problems(data: Any, spec: Mapping[str, Any], prefix: str = "") -> list[Problem]:
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(spec)
    problems = []
    for error in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.path))):
        where = _path([*([prefix] if prefix else []), *error.path])
        message = error.message
        if error.validator == "oneOf" and error.context:
            message = "; or ".join(sorted({c.message for c in error.context}))
        problems.append(Problem(where or (prefix or FILE_NAME), message))
    return problems


def definition_problems(
    data: Any, app: str | None = None, env_infra: Mapping[str, Any] | None = None
) -> list[Problem]:
    """Every problem of a loaded definition (``app``: check names belong to it; ``env_infra``:
    check references to the environment's values too)."""
    if data is None:
        data = {}
    problems = _schema_problems(data, schema.DEFINITION_SCHEMA)
    if problems:
        return problems
    if env_infra is not None:
        env_problems = _schema_problems(env_infra, schema.ENV_INFRA_SCHEMA, "infra")
        if env_problems:
            return env_problems
    Resolver(data, app or "", "", env_infra, problems, check_names=app is not None).state()
    return problems


def check_definition_text(text: str | bytes, app: str | None = None) -> list[Problem]:
    """What the config service runs at push time: the file alone (no environment values)."""
    try:
        data = load_yaml(text)
    except InvalidInput as exc:
        return [Problem(FILE_NAME, exc.message)]
    return definition_problems(data, app)


def parse_definition(
    data: Any, app: str, env: str, env_infra: Mapping[str, Any] | None
) -> Definition:
    """The desired state of ``app`` in ``env``; InvalidInput listing every problem."""
    if isinstance(data, str | bytes):
        data = load_yaml(data)
    if data is None:
        data = {}
    env_infra = env_infra or {}
    problems = _schema_problems(data, schema.DEFINITION_SCHEMA)
    problems += _schema_problems(env_infra, schema.ENV_INFRA_SCHEMA, "infra")
    if problems:
        raise _invalid(problems)
    state = Resolver(data, app, env, env_infra, problems, check_names=True).state()
    if problems:
        raise _invalid(problems)
    return Definition(app=app, env=env, desired=state, prune=bool(data.get("prune", False)))


def _invalid(problems: list[Problem]) -> InvalidInput:
    message = f"{FILE_NAME}: " + "; ".join(str(p) for p in problems)
    return InvalidInput(message, field=problems[0].field)


def config_problems(data: Any, provider: str) -> list[Any]:
    """The config service's validator (``config/files.py``): the file alone, at push time.

    References to the environment's values and name ownership are checked when planning,
    where the app and the environment record are known.
    """
    from klink.config.params import Problem as ConfigProblem

    problems = [ConfigProblem(p.field, p.message) for p in definition_problems(data)]
    if provider == "aws" and not problems and isinstance(data, dict):
        problems += [ConfigProblem(f, m) for f, m in aws_health_problems(data)]
    return problems


# ELBv2 refuses health checks more often than every 5 s or thresholds under 2.
AWS_HEALTH_MINIMUMS = {"intervalSeconds": 5, "healthyThreshold": 2, "unhealthyThreshold": 2}


def aws_health_problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    problems = []
    for name, group in (data.get("targetGroups") or {}).items():
        check = (group or {}).get("healthCheck") or {}
        for key, minimum in AWS_HEALTH_MINIMUMS.items():
            if key in check and check[key] < minimum:
                problems.append(
                    (
                        f"targetGroups.{name}.healthCheck.{key}",
                        f"{check[key]} is less than {minimum}, the minimum on aws",
                    )
                )
    return problems
