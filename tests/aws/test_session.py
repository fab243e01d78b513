"""Settings validation, role assumption with cached credentials, and error translation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.credentials import DeferredRefreshableCredentials

from klink.errors import InvalidInput, NotFound, ProviderError
from klink.providers import build_provider
from klink.providers.aws import AwsProvider, RoleCredentialCache
from klink.providers.aws.session import AwsConfig
from tests.aws.conftest import environment
from tests.aws.faults import CallRecorder

pytestmark = pytest.mark.slow

ROLE = "arn:aws:iam::111122223333:role/klink-deploy"


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({"provider": "aws"}, "region"),
        ({"provider": "aws", "region": " "}, "region"),
        ({"provider": "aws", "region": "us-east-1", "endpoint_url": "ftp://x"}, "endpoint_url"),
        ({"provider": "aws", "region": "us-east-1", "role_arn": "deploy"}, "role_arn"),
        ({"provider": "aws", "region": "us-east-1", "aws_retries": []}, "aws_retries"),
        ({"provider": "aws", "region": "us-east-1", "aws_retries": {"mode": "x"}}, "aws_retries"),
        (
            {"provider": "aws", "region": "us-east-1", "role_session_seconds": 60},
            "role_session_seconds",
        ),
        (
            {"provider": "aws", "region": "us-east-1", "aws_retries": {"max_attempts": 0}},
            "aws_retries",
        ),
    ],
)
def test_bad_environment_records_name_the_field(record: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        AwsProvider.from_environment("prod", record, None)
    assert caught.value.field == field


def test_registry_builds_the_aws_provider_with_retry_settings(moto: str) -> None:
    record = environment(moto, aws_retries={"mode": "adaptive", "max_attempts": 7})
    provider = build_provider("prod", record, None)
    try:
        assert isinstance(provider, AwsProvider)
        assert provider.session.config.retry_mode == "adaptive"
        client = provider.session.client("ec2")
        retries = client.meta.config.retries
        assert retries["mode"] == "adaptive"
        assert retries["total_max_attempts"] == 7
        assert client.meta.endpoint_url == moto
        assert client.meta.region_name == "us-east-1"
    finally:
        provider.close()


def test_role_is_assumed_through_sts_and_used_for_calls(
    make_provider: Callable[..., AwsProvider],
) -> None:
    provider = make_provider(role_arn=ROLE)
    assert provider.caller_identity().startswith(
        "arn:aws:sts::111122223333:assumed-role/klink-deploy/"
    )
    # Without a role the same endpoint answers with the base credentials' identity.
    assert ":assumed-role/" not in make_provider().caller_identity()


def test_role_credentials_come_from_botocores_refreshing_provider(
    make_provider: Callable[..., AwsProvider],
) -> None:
    provider = make_provider(role_arn=ROLE)
    found = provider.session.boto_session.get_credentials()
    assert isinstance(found, DeferredRefreshableCredentials)
    assert found.method == "klink-assume-role"
    client = provider.session.client("ec2")
    assert client._request_signer._credentials is found  # the client signs with the same
    assert make_provider().session.boto_session.get_credentials().method != "klink-assume-role"


def test_assumed_credentials_are_shared_per_role(
    make_provider: Callable[..., AwsProvider],
) -> None:
    cache = RoleCredentialCache()
    first = make_provider(credentials=cache, role_arn=ROLE)
    second = make_provider(credentials=cache, role_arn=ROLE)
    recorder = CallRecorder().attach(first.session)
    first.list_groups()
    second.list_groups()
    first.list_groups()
    assert cache.assumed == 1  # two environments of one account, one AssumeRole
    assert recorder.calls["AssumeRole"] == 1
    key = first.session.role_credentials()
    assert key is not None
    assert key.access_key == second.session.role_credentials().access_key  # type: ignore[union-attr]


def test_credentials_near_expiry_are_renewed_by_botocore(
    make_provider: Callable[..., AwsProvider],
) -> None:
    # 900 s sessions are inside botocore's 15-minute refresh window from the start: every use
    # renews them, which shows the refresh without waiting for a clock.
    cache = RoleCredentialCache()
    provider = make_provider(credentials=cache, role_arn=ROLE, role_session_seconds=900)
    recorder = CallRecorder().attach(provider.session)
    ec2 = provider.session.client("ec2")
    first = provider.session.role_credentials()
    provider.list_groups()
    second = provider.session.role_credentials()
    assert first is not None
    assert second is not None
    assert second.access_key != first.access_key
    assert recorder.calls["AssumeRole"] >= 2
    assert cache.assumed == recorder.calls["AssumeRole"]
    assert provider.session.client("ec2") is ec2  # the client follows the renewed keys
    assert provider.caller_identity().endswith("/klink")


def test_a_different_role_is_assumed_separately(make_provider: Callable[..., AwsProvider]) -> None:
    cache = RoleCredentialCache()
    make_provider(credentials=cache, role_arn=ROLE).list_groups()
    other = make_provider(credentials=cache, role_arn="arn:aws:iam::444455556666:role/other")
    assert ":444455556666:assumed-role/other/" in other.caller_identity()
    assert cache.assumed == 2


def test_cloud_errors_become_klink_errors_with_the_clouds_message(provider: AwsProvider) -> None:
    with pytest.raises(NotFound) as missing:
        provider.describe_image("ami-12345678")
    assert "ami-12345678" in missing.value.message
    with pytest.raises(ProviderError) as refused:
        provider.tag_image("not-an-id", {"a": "b"})
    assert "tag image not-an-id" in refused.value.message


def test_unreachable_endpoint_is_a_provider_error_not_a_botocore_one(
    sleeps: object, free_loopback_url: str
) -> None:
    config = AwsConfig.from_metadata(
        {
            "region": "us-east-1",
            "endpoint_url": free_loopback_url,
            "aws_retries": {"max_attempts": 1},
        }
    )
    from klink.providers.aws import AwsSession

    provider = AwsProvider(AwsSession(config, credentials=RoleCredentialCache()))
    try:
        with pytest.raises(ProviderError) as caught:
            provider.list_groups()
        assert "list groups" in caught.value.message
    finally:
        provider.close()


@pytest.fixture
def free_loopback_url(moto: str) -> str:
    from tests.conftest import free_port

    return f"http://127.0.0.1:{free_port()}"
