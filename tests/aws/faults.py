"""Fault injection and call recording for the AWS tests, through botocore's event system.

``FaultInjector`` answers a chosen fraction of requests itself, before they are sent, with the
error a throttled (or failing) AWS would return: the provider's real retry code then runs
against real botocore parsing. ``CallRecorder`` counts the attempts of each API call.
Both attach to an ``AwsSession``'s boto3 session, so clients made afterwards carry them.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSResponse

from klink.providers.aws.session import AwsSession


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_kwargs: Any) -> Any:
        yield self.data


def _error_body(service: str, code: str, message: str) -> bytes:
    if service == "ec2":
        text = (
            f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message>"
            "</Error></Errors><RequestID>fault</RequestID></Response>"
        )
    else:  # the query protocol: autoscaling, elbv2, sts
        text = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
            f"<Message>{message}</Message></Error><RequestId>fault</RequestId></ErrorResponse>"
        )
    return text.encode()


KINDS = {
    # kind: (status, ec2 code, query code, message)
    "throttle": (400, "RequestLimitExceeded", "Throttling", "Rate exceeded"),
    "5xx": (503, "Unavailable", "ServiceUnavailable", "Service is unavailable"),
    "quota": (400, "InstanceLimitExceeded", "LimitExceeded", "You have reached your quota"),
}


@dataclass
class FaultInjector:
    """Fail ``fraction`` of the matching requests (deterministically, from ``seed``)."""

    fraction: float
    kind: str = "throttle"
    seed: int = 7
    operations: frozenset[str] = frozenset()  # e.g. {"DescribeImages"}; empty means all
    injected: int = 0
    passed: int = 0
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def attach(self, session: AwsSession) -> FaultInjector:
        session.boto_session.events.register("before-send", self)
        return self

    def __call__(self, request: Any, event_name: str, **_kwargs: Any) -> AWSResponse | None:
        _, service, operation = event_name.split(".", 2)
        if self.operations and operation not in self.operations:
            return None
        if self._rng.random() >= self.fraction:
            self.passed += 1
            return None
        self.injected += 1
        status, ec2_code, query_code, message = KINDS[self.kind]
        code = ec2_code if service == "ec2" else query_code
        body = _error_body(service, code, message)
        return AWSResponse(request.url, status, {"Content-Type": "text/xml"}, _Body(body))


@dataclass
class CallRecorder:
    """Counts attempts by operation name (each HTTP attempt, answered by the server or by a
    FaultInjector: botocore's retries included), and keeps each call's parameters, in order,
    as the caller passed them."""

    calls: Counter[str] = field(default_factory=Counter)
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def attach(self, session: AwsSession) -> CallRecorder:
        session.boto_session.events.register("before-send", self)
        session.boto_session.events.register("provide-client-params", self._params)
        return self

    def __call__(self, event_name: str, **_kwargs: Any) -> None:
        self.calls[event_name.split(".", 2)[2]] += 1
        # None: the request goes on (a before-send answer would replace it).

    def _params(self, event_name: str, params: dict[str, Any], **_kwargs: Any) -> None:
        self.requests.append((event_name.split(".", 2)[2], dict(params)))

    def reset(self) -> None:
        """Forget what was recorded so far (the hooks stay attached)."""
        self.calls.clear()
        self.requests.clear()

    def operations(self) -> list[str]:
        return [name for name, _ in self.requests]
