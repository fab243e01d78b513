"""One AWS account+region as boto3 clients, with Klink's retry policy and error translation.

``AwsConfig`` is read from the environment record (region, optional ``endpoint_url``, optional
``role_arn``). ``AwsSession`` hands out one boto3 client per service. With a role, credentials
come from STS ``AssumeRole`` and are shared by every session of that role (one cache per
process), refreshed a few minutes before they expire, so environments in one account do not
each call STS.

Retries happen in two layers, both bounded: botocore's own (``standard`` or ``adaptive`` mode,
``max_attempts``), then ``AwsSession.call``'s explicit backoff for throttling and transient
errors (full jitter, exponential, capped; ``sleep`` injected), which a throttled account needs
because botocore gives up after a few quick tries. When both run out the caller gets
``Throttled``. ``translate()`` turns every botocore error into Klink's errors with the cloud's
message; ``providers/aws/infra.py`` uses the same ``AwsSession.call`` and ``translate``.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from klink.errors import Conflict, InvalidInput, NotFound, ProviderError, Throttled

T = TypeVar("T")

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
        "BandwidthLimitExceeded",
    }
)
TRANSIENT_CODES = frozenset(
    {"InternalError", "InternalFailure", "ServiceUnavailable", "RequestTimeout", "Unavailable"}
)
NOT_FOUND_CODES = frozenset(
    {
        "InvalidAMIID.NotFound",
        "InvalidAMIID.Unavailable",
        "InvalidAMIID.Malformed",
        "InvalidLaunchTemplateName.NotFoundException",
        "InvalidLaunchTemplateId.NotFound",
        "InvalidSubnetID.NotFound",
        "InvalidGroup.NotFound",
        "InvalidInstanceID.NotFound",
        "TargetGroupNotFound",
        "TargetGroupNotFoundException",
        "LoadBalancerNotFound",
        "ResourceNotFound",
        "ResourceNotFoundException",
        "NoSuchEntity",
        "InvalidTarget",
    }
)
CONFLICT_CODES = frozenset(
    {
        "AlreadyExists",
        "AlreadyExistsFault",
        "InvalidLaunchTemplateName.AlreadyExistsException",
        "DuplicateTargetGroupName",
        "ResourceInUse",
        "ResourceInUseFault",
        "ScalingActivityInProgress",
        "ScalingActivityInProgressFault",
        "IncorrectState",
        "InvalidGroup.Duplicate",
        "LimitExceeded",
        "LimitExceededFault",
    }
)
RETRY_MODES = ("standard", "adaptive")
# Refresh assumed-role credentials this long before they expire.
REFRESH_MARGIN = timedelta(minutes=5)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def is_retryable(exc: ClientError) -> bool:
    code = error_code(exc)
    return code in THROTTLING_CODES or code in TRANSIENT_CODES or _status(exc) >= 500


@contextmanager
def translate(what: str = "") -> Iterator[None]:
    """Turn botocore errors into Klink's: NotFound, Conflict, Throttled or ProviderError.

    The message is the cloud's, prefixed with ``what`` (e.g. "describe group web-prod-v001").
    """
    prefix = f"{what}: " if what else ""
    try:
        yield
    except ClientError as exc:
        code = error_code(exc)
        message = f"{prefix}{exc.response.get('Error', {}).get('Message') or code}"
        if code in THROTTLING_CODES or code in TRANSIENT_CODES or _status(exc) >= 500:
            raise Throttled(f"{message} ({code or _status(exc)}, retries exhausted)") from None
        if (
            code in NOT_FOUND_CODES
            or code.endswith("NotFound")
            # Auto Scaling says "ValidationError: AutoScalingGroup name not found - …"
            or (code == "ValidationError" and "not found" in message.lower())
        ):
            raise NotFound(message, code="not_found") from None
        if code in CONFLICT_CODES:
            raise Conflict(message) from None
        raise ProviderError(f"{message} ({code})" if code else message) from None
    except (BotoCoreError, ResponseParserError) as exc:
        first_line = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ProviderError(f"{prefix}{first_line}") from None


@dataclass(frozen=True)
class AwsConfig:
    """What one environment record says about its AWS account."""

    region: str
    endpoint_url: str | None = None
    role_arn: str | None = None
    account_id: str | None = None
    retry_mode: str = "standard"
    max_attempts: int = 3  # botocore's, per call, counting the first
    backoff_attempts: int = 5  # Klink's, around botocore's
    backoff_base: float = 0.5
    backoff_cap: float = 20.0
    connect_timeout: float = 5.0
    read_timeout: float = 30.0

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> AwsConfig:
        region = metadata.get("region")
        if not isinstance(region, str) or not region.strip():
            raise InvalidInput("an aws environment needs a region", field="region")
        endpoint = metadata.get("endpoint_url")
        if endpoint is not None and (
            not isinstance(endpoint, str) or not endpoint.startswith(("http://", "https://"))
        ):
            raise InvalidInput("endpoint_url must be an http(s) URL", field="endpoint_url")
        role = metadata.get("role_arn")
        if role is not None and (not isinstance(role, str) or ":role/" not in role):
            raise InvalidInput("role_arn must be an IAM role ARN", field="role_arn")
        retries = metadata.get("aws_retries")
        retries = {} if retries is None else retries
        if not isinstance(retries, dict):
            raise InvalidInput("aws_retries must be a JSON object", field="aws_retries")
        mode = retries.get("mode", "standard")
        if mode not in RETRY_MODES:
            raise InvalidInput(
                f"aws_retries.mode must be one of {', '.join(RETRY_MODES)}", field="aws_retries"
            )
        numbers: dict[str, int] = {}
        for key, default in (("max_attempts", 3), ("backoff_attempts", 5)):
            value = retries.get(key, default)
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 20:
                raise InvalidInput(f"aws_retries.{key} must be 1-20", field="aws_retries")
            numbers[key] = value
        account = metadata.get("account_id")
        return cls(
            region=region.strip(),
            endpoint_url=endpoint,
            role_arn=role,
            account_id=account if isinstance(account, str) else None,
            retry_mode=mode,
            **numbers,
        )

    def botocore_config(self) -> Config:
        return Config(
            region_name=self.region,
            retries={"mode": self.retry_mode, "total_max_attempts": self.max_attempts},  # type: ignore[arg-type]
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
        )


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    token: str
    expires_at: datetime


class RoleCredentialCache:
    """Assumed-role credentials per (role, endpoint), reused until shortly before expiry."""

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self.clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str | None], Credentials] = {}
        self.assumed = 0  # how many times STS was asked, for tests and metrics

    def get(
        self, role_arn: str, endpoint: str | None, fetch: Callable[[], Credentials]
    ) -> Credentials:
        key = (role_arn, endpoint)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and self.clock() < entry.expires_at - REFRESH_MARGIN:
                return entry
            entry = fetch()
            self.assumed += 1
            self._entries[key] = entry
            return entry


# One cache per process: every environment of one account shares its role's credentials.
ROLE_CREDENTIALS = RoleCredentialCache()


class AwsSession:
    """boto3 clients for one AwsConfig; thread-safe (boto3 clients are)."""

    def __init__(
        self,
        config: AwsConfig,
        *,
        boto_session: boto3.Session | None = None,
        credentials: RoleCredentialCache | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        session_name: str = "klink",
    ) -> None:
        self.config = config
        self.boto_session = boto_session or boto3.Session(region_name=config.region)
        self.credentials = credentials or ROLE_CREDENTIALS
        self.sleep = sleep
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not secrets
        self.session_name = session_name
        self._lock = threading.Lock()
        self._clients: dict[str, tuple[str | None, Any]] = {}
        self._botocore_config = config.botocore_config()

    # Credentials ---------------------------------------------------------------------------
    def _assume(self) -> Credentials:
        assert self.config.role_arn is not None
        sts = self.boto_session.client(
            "sts", endpoint_url=self.config.endpoint_url, config=self._botocore_config
        )
        with translate(f"assume role {self.config.role_arn}"):
            answer = sts.assume_role(
                RoleArn=self.config.role_arn, RoleSessionName=self.session_name
            )
        raw = answer["Credentials"]
        expires = raw["Expiration"]
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        return Credentials(raw["AccessKeyId"], raw["SecretAccessKey"], raw["SessionToken"], expires)

    def role_credentials(self) -> Credentials | None:
        if self.config.role_arn is None:
            return None
        return self.credentials.get(self.config.role_arn, self.config.endpoint_url, self._assume)

    # Clients -------------------------------------------------------------------------------
    def client(self, service: str) -> Any:
        """The boto3 client of ``service``, rebuilt when the role's credentials are renewed."""
        creds = self.role_credentials()
        key_id = creds.access_key if creds else None
        with self._lock:
            cached = self._clients.get(service)
            if cached is not None and cached[0] == key_id:
                return cached[1]
            extra: dict[str, Any] = {}
            if creds is not None:
                extra = {
                    "aws_access_key_id": creds.access_key,
                    "aws_secret_access_key": creds.secret_key,
                    "aws_session_token": creds.token,
                }
            made = self.boto_session.client(
                service,  # type: ignore[call-overload]
                endpoint_url=self.config.endpoint_url,
                config=self._botocore_config,
                **extra,
            )
            self._clients[service] = (key_id, made)
            return made

    # Calls ---------------------------------------------------------------------------------
    def backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
        ceiling = min(self.config.backoff_cap, self.config.backoff_base * (2**attempt))
        return self.rng.uniform(0, ceiling)

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """Run ``fn`` (one or more boto3 calls), retrying throttling and transient errors.

        ``fn`` must be safe to repeat: reads, or writes the cloud refused before doing anything
        (a throttled or 5xx answer). Errors come out translated; after the last attempt a
        throttling or transient error is ``Throttled``.
        """
        attempts = self.config.backoff_attempts
        for attempt in range(attempts):
            try:
                return fn()
            except ClientError as exc:
                if not is_retryable(exc) or attempt == attempts - 1:
                    with translate(what):
                        raise
            except ResponseParserError:
                # An unreadable answer (an HTML error page): maybe transient, retried, but
                # reported as the cloud's failure rather than throttling when it persists.
                if attempt == attempts - 1:
                    with translate(what):
                        raise
            except BotoCoreError:
                with translate(what):
                    raise
            self.sleep(self.backoff(attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        with self._lock:
            for _key, made in self._clients.values():
                made.close()
            self._clients.clear()
