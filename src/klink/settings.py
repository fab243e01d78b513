"""Typed settings, read once from ``KLINK_*`` environment variables.

``Settings.from_env(mapping)`` takes the environment as a mapping so tests pass a dict. A bad
value raises SettingsError naming the variable; ``klink serve`` turns that into one line and a
non-zero exit.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from klink.errors import SettingsError

T = TypeVar("T")

SERVICES = ("auth", "metadata", "config", "build", "bake", "infra", "deploy")


def _int(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError("must not be negative")
    return number


def _float(value: str) -> float:
    number = float(value)
    if number < 0:
        raise ValueError("must not be negative")
    return number


def _cron(value: str) -> str:
    from croniter import croniter

    if not croniter.is_valid(value):
        raise ValueError("not a cron expression (e.g. '0 4 * * 1': Mondays 04:00 UTC)")
    return value


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("must be one of 1/0, true/false, yes/no, on/off")


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host:
        raise ValueError("must be HOST:PORT")
    number = int(port)
    if not 0 <= number <= 65535:
        raise ValueError("port must be 0-65535")
    return host.strip("[]"), number


def _listen_text(value: str) -> str:
    parse_listen(value)
    return value


def _get(env: Mapping[str, str], name: str, parse: Callable[[str], T], default: T) -> T:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return parse(raw)
    except (ValueError, TypeError) as exc:
        raise SettingsError(f"{name}={raw!r}: {exc}", field=name) from None


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    listen_host: str = "127.0.0.1"
    listen_port: int = 8642
    public_url: str = "http://127.0.0.1:8642"
    service_urls: Mapping[str, str] = field(default_factory=dict)
    log_level: str = "INFO"
    # The deployment engine runs inside `klink serve` unless turned off (then run `klink worker`).
    engine_enabled: bool = True
    engine_workers: int = 4
    lease_seconds: float = 30.0
    # An active deployment without progress for this long is reported (klink.deploy.stuck).
    stuck_seconds: float = 600.0
    # HOST:PORT where `klink worker` serves /metrics (Prometheus); empty: not served.
    worker_metrics_listen: str = ""
    notify_webhook_url: str = ""
    notify_slack_url: str = ""
    build_timeout_seconds: float = 900.0
    bake_timeout_seconds: float = 1800.0
    bake_base_schedule: str = "0 4 * * 1"
    images_keep: int = 5
    # Background schedules (base bakes, image cleanup, infra drift) can be turned off for tests.
    schedules_enabled: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        home = Path(
            _get(env, "KLINK_HOME", str, str(Path.home() / ".local" / "share" / "klink"))
        ).expanduser()
        database_url = _get(env, "KLINK_DATABASE_URL", str, f"sqlite:///{home / 'klink.db'}")
        host, port = _get(env, "KLINK_LISTEN", parse_listen, ("127.0.0.1", 8642))
        url_host = f"[{host}]" if ":" in host else host
        public_url = _get(env, "KLINK_PUBLIC_URL", str, f"http://{url_host}:{port}").rstrip("/")
        service_urls = {
            name: _get(env, f"KLINK_{name.upper()}_URL", str, f"{public_url}/{name}").rstrip("/")
            for name in SERVICES
        }
        log_level = _get(env, "KLINK_LOG_LEVEL", str, "INFO").upper()
        if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise SettingsError(
                f"KLINK_LOG_LEVEL={log_level!r}: must be DEBUG, INFO, WARNING or ERROR",
                field="KLINK_LOG_LEVEL",
            )
        return cls(
            home=home,
            database_url=database_url,
            listen_host=host,
            listen_port=port,
            public_url=public_url,
            service_urls=service_urls,
            log_level=log_level,
            engine_enabled=_get(env, "KLINK_ENGINE", _bool, True),
            engine_workers=_get(env, "KLINK_ENGINE_WORKERS", _int, 4),
            lease_seconds=_get(env, "KLINK_LEASE_SECONDS", _float, 30.0),
            stuck_seconds=_get(env, "KLINK_STUCK_SECONDS", _float, 600.0),
            worker_metrics_listen=_get(env, "KLINK_WORKER_METRICS", _listen_text, ""),
            notify_webhook_url=_get(env, "KLINK_NOTIFY_WEBHOOK_URL", str, ""),
            notify_slack_url=_get(env, "KLINK_NOTIFY_SLACK_URL", str, ""),
            build_timeout_seconds=_get(env, "KLINK_BUILD_TIMEOUT", _float, 900.0),
            bake_timeout_seconds=_get(env, "KLINK_BAKE_TIMEOUT", _float, 1800.0),
            bake_base_schedule=_get(env, "KLINK_BAKE_BASE_SCHEDULE", _cron, "0 4 * * 1"),
            images_keep=_get(env, "KLINK_IMAGES_KEEP", _int, 5),
            schedules_enabled=_get(env, "KLINK_SCHEDULES", _bool, True),
        )

    def service_url(self, name: str) -> str:
        return self.service_urls.get(name, f"{self.public_url}/{name}")

    @property
    def admin_token_path(self) -> Path:
        return self.home / "admin-token"
