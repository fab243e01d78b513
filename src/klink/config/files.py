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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from klink import limits
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


class ParseError(ValueError):
    """A file that cannot be parsed under Klink's input policy; ``field`` is the value's path."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


def parse_json(raw: bytes) -> Any:
    """JSON under ``klink.limits``' policy: nothing that breaks a later read (nesting, lone
    surrogates, numbers out of range) is accepted at push time."""
    try:
        return limits.loads(raw)
    except InvalidInput as exc:
        raise ParseError(exc.message, exc.field or "") from None


def parse_yaml(raw: bytes) -> Any:
    import yaml

    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ParseError(f"not UTF-8 ({exc.reason})") from None
    except RecursionError:
        raise ParseError(f"nested too deep (at most {limits.MAX_DEPTH} levels)") from None
    except yaml.YAMLError as exc:
        raise ParseError(f"not valid YAML: {exc}") from None
    try:
        limits.check(data)
    except InvalidInput as exc:
        raise ParseError(exc.message, exc.field or "") from None
    return data


def _deployment_params(data: Any, provider: str) -> list[Problem]:
    from klink.config.inputs import input_problems

    strict = input_problems(data)
    named = {problem.field for problem in strict}
    lax = deployment_params_problems(data, provider=provider)
    return strict + [problem for problem in lax if problem.field not in named]


def _application_properties(data: Any, _provider: str) -> list[Problem]:
    from klink.config.inputs import properties_problems

    strict = properties_problems(data)
    named = {problem.field for problem in strict}
    lax = application_properties_problems(data)
    return strict + [problem for problem in lax if problem.field not in named]


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
        return None, [Problem(getattr(exc, "field", ""), str(exc))]
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
