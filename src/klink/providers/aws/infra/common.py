"""What the infrastructure modules share: the session, the VPC, ownership of what is read."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from klink.errors import NotFound, ProviderError
from klink.providers.aws.session import AwsSession
from klink.providers.base import TAG_APP, TAG_ENV, TAG_MANAGED_BY


@dataclass(frozen=True)
class Found:
    """What one read returns: resources of this app+env (managed, or named in the definition
    and not managed by anyone) and names managed by another app+env (name → owner)."""

    mine: dict[str, Any] = field(default_factory=dict)
    foreign: dict[str, str] = field(default_factory=dict)


def owner(tags: Mapping[str, str]) -> str | None:
    if tags.get(TAG_MANAGED_BY) != "infra":
        return None
    return f"app {tags.get(TAG_APP, '?')} in {tags.get(TAG_ENV, '?')}"


def sort_out(tags: Mapping[str, str], name: str, app: str, env: str, names: set[str]) -> str:
    """'mine', 'foreign' or 'other' for a resource named ``name`` with ``tags``."""
    if owner(tags) is not None:
        if tags.get(TAG_APP) == app and tags.get(TAG_ENV) == env:
            return "mine"
        return "foreign" if name in names else "other"
    return "mine" if name in names else "other"


class Base:
    """One AWS account+region; the environment's VPC (``infra.vpc``, else the default VPC)."""

    def __init__(self, session: AwsSession, vpc_id: str | None = None) -> None:
        self.session = session
        self._vpc_id = vpc_id

    @property
    def _ec2(self) -> Any:
        return self.session.client("ec2")

    @property
    def _elb(self) -> Any:
        return self.session.client("elbv2")

    @property
    def _iam(self) -> Any:
        return self.session.client("iam")

    # VPC ----------------------------------------------------------------------------------
    def vpc_id(self) -> str:
        """The environment's VPC (``infra.vpc``), else the account's default VPC."""
        if self._vpc_id is not None:
            return self._vpc_id
        ec2 = self._ec2
        vpcs = self.session.call(
            "find the default VPC",
            lambda: ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"],
        )
        if not vpcs:
            raise NotFound(
                "this account has no default VPC; set the environment's infra.vpc",
                field="infra.vpc",
            )
        self._vpc_id = str(vpcs[0]["VpcId"])
        return self._vpc_id

    def _ignore_missing(self, what: str, fn: Any) -> None:
        with contextlib.suppress(NotFound):
            self.session.call(what, fn)


def document(value: Any) -> dict[str, Any]:
    """A policy document as a dict (botocore decodes IAM documents; strings are decoded here)."""
    if isinstance(value, str):
        from urllib.parse import unquote

        try:
            decoded: dict[str, Any] = json.loads(unquote(value))
        except ValueError as exc:
            raise ProviderError(f"unreadable policy document: {exc}") from None
        return decoded
    return dict(value)


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)
