"""Fixtures of the analysis tests: the AWS provider on moto (shared with tests/aws) and a real
Prometheus (``fixtures_prometheus``)."""

from __future__ import annotations

from tests.analysis.fixtures_prometheus import prometheus
from tests.aws.conftest import ec2, elbv2, make_provider, provider, sleeps, subnet

__all__ = ["ec2", "elbv2", "make_provider", "prometheus", "provider", "sleeps", "subnet"]
