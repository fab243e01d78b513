"""Fixtures of the analysis tests: the AWS provider on moto (shared with tests/aws) and a real
Prometheus scraping a real HAProxy (``prometheus`` in ``fixtures_prometheus``)."""

from __future__ import annotations

from tests.aws.conftest import ec2, elbv2, make_provider, provider, sleeps, subnet

__all__ = ["ec2", "elbv2", "make_provider", "provider", "sleeps", "subnet"]
