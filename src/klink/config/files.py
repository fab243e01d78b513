"""The registry of files a config repository may hold: name → parser, validator, required?

The pre-receive hook, ``POST /config/validate`` and the read API all go through this one table,
so a file known here is validated at push time and readable at ``/files/{name}``; a name not
here is refused by the read API. Another part adds its own optional file with one line in
``FILES`` below, naming its validator as ``"module:function"`` (imported lazily, so the config
service never imports that part unless such a file is pushed). It must be that line, not a call
at run time: the hook runs in git's process, which imports only this module::

    FileSpec("infrastructure.yaml", "klink.infra.model:config_problems", parse=parse_yaml),

A validator is ``(data: object, provider: str) -> list[Problem]`` where ``data`` is the parsed
file and ``provider`` the environment's provider (``aws`` or ``local``).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from klink.config.params import (
    Problem,
    application_properties_problems,
    deployment_params_problems,
    launch_data_problems,
)
from klink.errors import Conflict, InvalidInput

Validator = Callable[[Any, str], list[Problem]]
Parser = Callable[[bytes], Any]

APPLICATION_PROPERTIES = "application-properties.json"
DEPLOYMENT_PARAMS = "deployment-params.json"
LAUNCH_DATA = "launch-data.json"
MAX_FILE_BYTES = 1024 * 1024


def parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc.msg} at line {exc.lineno}") from None


def parse_yaml(raw: bytes) -> Any:
    import yaml

    try:
        return yaml.safe_load(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 ({exc.reason})") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"not valid YAML: {exc}") from None


def _deployment_params(data: Any, provider: str) -> list[Problem]:
    return deployment_params_problems(data, provider=provider)


def _application_properties(data: Any, _provider: str) -> list[Problem]:
    return application_properties_problems(data)


def _launch_data(data: Any, _provider: str) -> list[Problem]:
    return launch_data_problems(data)


@dataclass(frozen=True)
class FileSpec:
    name: str
    validator: Validator | str  # a callable, or "module:function" imported when first needed
    required: bool = False
    parse: Parser = parse_json

    def validate(self, data: Any, provider: str) -> list[Problem]:
        check = self.validator
        if isinstance(check, str):
            module, _, function = check.partition(":")
            check = getattr(importlib.import_module(module), function)
            assert callable(check)
        result: list[Problem] = check(data, provider)
        return result


FILES: dict[str, FileSpec] = {
    spec.name: spec
    for spec in (
        FileSpec(APPLICATION_PROPERTIES, _application_properties, required=True),
        FileSpec(DEPLOYMENT_PARAMS, _deployment_params, required=True),
        FileSpec(LAUNCH_DATA, _launch_data, required=True),
        FileSpec("infrastructure.yaml", "klink.infra.model:config_problems", parse=parse_yaml),
    )
}


def spec_of(name: str) -> FileSpec:
    """The spec of a known file; InvalidInput naming ``file`` for anything else."""
    spec = FILES.get(name)
    if spec is None:
        raise InvalidInput(
            f"unknown config file {name!r}; known files: {', '.join(sorted(FILES))}", field="file"
        )
    return spec


def check_file(name: str, raw: bytes, provider: str) -> tuple[Any, list[Problem]]:
    """Parse and validate one file's bytes: (parsed data or None, problems)."""
    spec = spec_of(name)
    if len(raw) > MAX_FILE_BYTES:
        return None, [Problem("", f"larger than {MAX_FILE_BYTES} bytes")]
    try:
        data = spec.parse(raw)
    except ValueError as exc:
        return None, [Problem("", str(exc))]
    return data, spec.validate(data, provider)


def tree_problems(files: Mapping[str, bytes | None], provider: str) -> list[tuple[str, Problem]]:
    """Problems of a whole tree: every known file present is valid, every required one there.

    ``files`` maps each known file name to its bytes (None when absent). Files the registry
    does not know are not config and are not checked.
    """
    problems: list[tuple[str, Problem]] = []
    for name, spec in FILES.items():
        raw = files.get(name)
        if raw is None:
            if spec.required:
                problems.append((name, Problem("", "is missing (required)")))
            continue
        problems += [(name, problem) for problem in check_file(name, raw, provider)[1]]
    return problems


def describe(name: str, problem: Problem) -> str:
    """``file: field: reason`` (the field left out when the whole file is wrong)."""
    return (
        f"{name}: {problem.field}: {problem.message}"
        if problem.field
        else f"{name}: {problem.message}"
    )


def decode(name: str, raw: bytes) -> Any:
    """The parsed content of a stored file (which passed validation when it was pushed)."""
    try:
        return spec_of(name).parse(raw)
    except ValueError as exc:
        raise Conflict(f"{name} cannot be parsed at this commit: {exc}", field="file") from None
