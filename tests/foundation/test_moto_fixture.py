"""The moto fixture gives a clean, loopback-only emulator per test."""

from __future__ import annotations

import boto3


def test_moto_is_loopback_and_reset_between_tests(moto: str) -> None:
    assert moto.startswith("http://127.0.0.1:")
    ec2 = boto3.client("ec2", endpoint_url=moto, region_name="us-east-1")
    assert ec2.describe_key_pairs()["KeyPairs"] == []
    ec2.create_key_pair(KeyName="only-in-this-test")
    assert len(ec2.describe_key_pairs()["KeyPairs"]) == 1


def test_second_test_sees_a_clean_emulator(moto: str) -> None:
    ec2 = boto3.client("ec2", endpoint_url=moto, region_name="us-east-1")
    assert ec2.describe_key_pairs()["KeyPairs"] == []
