"""The shape every Klink service shares: an app factory with health, metrics, errors and auth."""

from klink.service.app import make_service
from klink.service.auth import admin, current_principal, reader, runtime_of
from klink.service.health import HealthCheck
from klink.service.runtime import Runtime

__all__ = [
    "HealthCheck",
    "Runtime",
    "admin",
    "current_principal",
    "make_service",
    "reader",
    "runtime_of",
]
