"""One AWS account+region as boto3 clients, with Klink's retry policy and error translation.

``AwsConfig`` is read from the environment record (region, optional ``endpoint_url``, optional
``role_arn``). ``AwsSession`` hands out one boto3 client per service.

Credentials: with a role, botocore's own refreshing assume-role provider supplies them
(``AssumeRoleCredentialFetcher`` behind ``DeferredRefreshableCredentials``, first in the
session's credential chain), so botocore renews them before they expire and every client
follows. The fetcher's cache is one per process (``ROLE_CREDENTIALS``): the environments of
one account share their role's credentials and STS is asked once.

Retries: one layer at this boundary, botocore's (``standard`` or ``adaptive`` mode,
``max_attempts`` attempts per call, counting the first: its throttling and transient-error
conditions, exponential backoff with jitter capped at 20 s, retry quota). Its delays go
through the injected ``sleep`` (so tests record them instead of sleeping); ``call`` itself
does not loop. When botocore gives up the caller gets ``Throttled``, and the deployment
engine's own retry budget decides what happens next. ``translate()`` turns every botocore
error into Klink's errors with the cloud's message: a ``*LimitExceeded`` is the account's
quota (``QuotaExceeded``), not a conflict.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import (
    AssumeRoleCredentialFetcher,
    CredentialProvider,
    DeferredRefreshableCredentials,
)
from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError
from botocore.retries import standard

from klink.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    ProviderError,
    QuotaExceeded,
    Throttled,
)

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
    }
)
# The account's limits (instances, vCPUs, groups, launch templates, target groups…): raising
# the quota helps, retrying does not. Throttling codes (``RequestLimitExceeded``) come first.
QUOTA_SUFFIXES = (
    "LimitExceeded",
    "LimitExceededFault",
    "LimitExceededException",
    "QuotaExceeded",
    "QuotaExceededException",
)
QUOTA_CODES = frozenset(
    {
        "TooManyTargetGroups",
        "TooManyLoadBalancers",
        "TooManyTargets",
        "TooManyListeners",
        "TooManyRules",
        "TooManyCertificates",
        "MaxSpotInstanceCountExceeded",
    }
)
RETRY_MODES = ("standard", "adaptive")


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
        if code in QUOTA_CODES or code.endswith(QUOTA_SUFFIXES):
            raise QuotaExceeded(f"{message} ({code}: an account quota)") from None
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
    max_attempts: int = 5  # botocore's, per call, counting the first
    role_session_seconds: int = 3600  # how long assumed-role credentials last
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
        # ``backoff_attempts`` counted a second retry loop, gone: accepted and ignored so that
        # older environment records still build.
        attempts = retries.get("max_attempts", 5)
        if not isinstance(attempts, int) or isinstance(attempts, bool) or not 1 <= attempts <= 20:
            raise InvalidInput("aws_retries.max_attempts must be 1-20", field="aws_retries")
        duration = metadata.get("role_session_seconds", 3600)
        if (
            not isinstance(duration, int)
            or isinstance(duration, bool)
            or not (900 <= duration <= 43200)
        ):
            raise InvalidInput(
                "role_session_seconds must be 900-43200 (STS's range)", field="role_session_seconds"
            )
        account = metadata.get("account_id")
        return cls(
            region=region.strip(),
            endpoint_url=endpoint,
            role_arn=role,
            account_id=account if isinstance(account, str) else None,
            retry_mode=mode,
            max_attempts=attempts,
            role_session_seconds=duration,
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
    """A frozen copy of the current credentials (for Packer, which runs outside botocore)."""

    access_key: str
    secret_key: str
    token: str
    expires_at: datetime | None = None


class RoleCredentialCache(dict[str, Any]):
    """The cache botocore's ``AssumeRoleCredentialFetcher`` keeps STS answers in, keyed by the
    role and session arguments; it asks STS again when an entry is within 15 minutes of its
    expiry. ``assumed`` counts the answers stored (the STS calls), for tests and metrics."""

    def __init__(self) -> None:
        super().__init__()
        self.assumed = 0
        self._lock = threading.Lock()

    def __setitem__(self, key: str, value: Any) -> None:
        with self._lock:
            self.assumed += 1
            super().__setitem__(key, value)


# One cache per process: every environment of one account shares its role's credentials.
ROLE_CREDENTIALS = RoleCredentialCache()


class _AssumedRole(CredentialProvider):
    """First in the role session's credential chain: botocore's refreshing credentials."""

    METHOD = "klink-assume-role"
    CANONICAL_NAME = "klink-assume-role"

    def __init__(self, fetcher: AssumeRoleCredentialFetcher) -> None:
        super().__init__()
        self._fetcher = fetcher

    def load(self) -> DeferredRefreshableCredentials:
        return DeferredRefreshableCredentials(
            refresh_using=self._fetcher.fetch_credentials, method=self.METHOD
        )


class AwsSession:
    """boto3 clients for one AwsConfig; thread-safe (boto3 clients are)."""

    def __init__(
        self,
        config: AwsConfig,
        *,
        credentials: RoleCredentialCache | None = None,
        sleep: Callable[[float], None] = time.sleep,
        session_name: str = "klink",
    ) -> None:
        self.config = config
        self.sleep = sleep
        self.session_name = session_name
        self._lock = threading.Lock()
        self._clients: dict[str, Any] = {}
        self._botocore_config = config.botocore_config()
        core = botocore.session.Session()
        if config.role_arn is not None:
            self._assume_role(core, credentials if credentials is not None else ROLE_CREDENTIALS)
        self.boto_session = boto3.Session(botocore_session=core, region_name=config.region)

    # Credentials ---------------------------------------------------------------------------
    def _assume_role(self, core: botocore.session.Session, cache: RoleCredentialCache) -> None:
        assert self.config.role_arn is not None
        # The credentials the role is assumed with: the default chain (environment, files,
        # instance profile) of a session of their own, so that they are not the role's.
        source = botocore.session.Session().get_credentials()
        if source is None:
            raise ProviderError(f"no AWS credentials to assume {self.config.role_arn} with")
        fetcher = AssumeRoleCredentialFetcher(
            client_creator=functools.partial(self._make_client, core),
            source_credentials=source,
            role_arn=self.config.role_arn,
            extra_args={
                "RoleSessionName": self.session_name,
                "DurationSeconds": self.config.role_session_seconds,
            },
            cache=cache,
        )
        core.get_component("credential_provider").insert_before("env", _AssumedRole(fetcher))

    def role_credentials(self) -> Credentials | None:
        """The role's current credentials (renewed by botocore when near expiry); None
        without a role."""
        if self.config.role_arn is None:
            return None
        with translate(f"assume role {self.config.role_arn}"):
            found = self.boto_session.get_credentials()
            frozen = found.get_frozen_credentials() if found is not None else None
        if frozen is None:
            return None
        return Credentials(frozen.access_key or "", frozen.secret_key or "", frozen.token or "")

    # Clients -------------------------------------------------------------------------------
    def client(self, service: str) -> Any:
        """The boto3 client of ``service`` (one per session; its credentials refresh
        themselves)."""
        with self._lock:
            made = self._clients.get(service)
            if made is None:
                made = self._clients[service] = self.boto_session.client(
                    service,  # type: ignore[call-overload]
                    endpoint_url=self.config.endpoint_url,
                    config=self._botocore_config,
                )
                self._retry_through_sleep(made)
            return made

    def _make_client(self, core: botocore.session.Session, service: str, **kwargs: Any) -> Any:
        """The STS client of the assume-role fetcher (explicit source credentials in
        ``kwargs``), with the same endpoint, configuration and retries as every other."""
        made = core.create_client(
            service,
            region_name=self.config.region,
            endpoint_url=self.config.endpoint_url,
            config=self._botocore_config,
            **kwargs,
        )
        self._retry_through_sleep(made)
        return made

    def _retry_through_sleep(self, client: Any) -> None:
        """Keep botocore's standard retry policy and route its delays through ``sleep``.

        botocore sleeps (``time.sleep``) for whatever its ``needs-retry`` handler answers, so
        the policy's own handler is replaced, under its own id, by one that asks the same
        policy (a fresh one, from botocore's ``register_retry_handler``), sleeps here, and
        answers 0. (The replaced handler's retry quota is left unused.)
        """
        service = client.meta.service_model.service_id.hyphenize()
        event, unique_id = f"needs-retry.{service}", f"retry-config-{service}"
        events = client.meta.events
        events.unregister(event, unique_id=unique_id)
        policy = standard.register_retry_handler(client, max_attempts=self.config.max_attempts)
        events.unregister(event, unique_id=unique_id)

        def needs_retry(**kwargs: Any) -> float | None:
            delay = policy.needs_retry(**kwargs)
            if delay is None:
                return None
            self.sleep(delay)
            return 0

        events.register(event, needs_retry, unique_id=unique_id)

    # Calls ---------------------------------------------------------------------------------
    def call(self, what: str, fn: Callable[[], T]) -> T:
        """Run ``fn`` (one or more boto3 calls) once, its errors translated; each boto3 call
        in it has already been retried by botocore (throttling, transient errors)."""
        with translate(what):
            return fn()

    def close(self) -> None:
        with self._lock:
            for made in self._clients.values():
                made.close()
            self._clients.clear()
