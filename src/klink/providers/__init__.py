"""Providers, registered by name behind the one interface of ``providers/base.py``.

``build_provider`` imports a provider only when an environment uses it, so that nothing that
does not deploy pays for boto3.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from klink.errors import InvalidInput

if TYPE_CHECKING:
    from klink.providers.base import Provider

# name -> "module:Class"
REGISTRY: dict[str, str] = {
    "aws": "klink.providers.aws:AwsProvider",
    "local": "klink.providers.local:LocalProvider",
}


def provider_class(name: object) -> type[Provider]:
    if not isinstance(name, str) or name not in REGISTRY:
        raise InvalidInput(
            f"provider {name!r} is not one of {', '.join(sorted(REGISTRY))}", field="provider"
        )
    module_name, _, class_name = REGISTRY[name].partition(":")
    cls: type[Provider] = getattr(importlib.import_module(module_name), class_name)
    return cls


def build_provider(env: str, metadata: Mapping[str, Any], settings: Any) -> Provider:
    """The provider of environment ``env``, built from its metadata record."""
    return provider_class(metadata.get("provider")).from_environment(env, metadata, settings)
