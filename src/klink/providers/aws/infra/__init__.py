"""The boto3 side of infrastructure: security groups, ELBv2 load balancers and listeners, IAM.

Target groups are not here: they go through the generic ``Provider`` interface (``targets.py``).
Every call goes through ``AwsSession.call`` (Klink's retry policy for throttling and transient
errors) and comes out as Klink's errors. Resources are addressed by Klink name; ids and ARNs are
looked up per call, never cached, so a resource recreated behind Klink's back is not addressed
by a stale id. Everything created carries ``klink:managed-by=infra``, ``klink:app`` and
``klink:env``.

It speaks ``klink.providers.infra``, the boundary's own types, which the infrastructure
service builds and hands down. Reading returns those specs: rules as one source each, group
references and load balancer security groups by group *name*, policy documents decoded. One
module per concern (``groups``, ``balancers``, ``iam``); ``AwsInfra`` is all of them on one
session.
"""

from __future__ import annotations

from klink.providers.aws.infra.balancers import Balancers
from klink.providers.aws.infra.common import Found
from klink.providers.aws.infra.iam import IAM_PATH, Roles


class AwsInfra(Balancers, Roles):
    """Infrastructure kinds of one AWS account+region."""


__all__ = ["IAM_PATH", "AwsInfra", "Found"]
