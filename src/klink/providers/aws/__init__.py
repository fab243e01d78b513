"""The AWS provider: the only place in Klink that imports boto3 or botocore.

``AwsProvider`` implements ``providers/base.py``; ``AwsSession`` (clients, assumed-role
credentials, retries) and ``translate`` (botocore errors → Klink errors) are shared with
``infra.py`` so that every AWS call has the same retry policy and error shape.
"""

from klink.providers.aws.provider import AwsProvider
from klink.providers.aws.session import AwsConfig, AwsSession, RoleCredentialCache, translate

__all__ = ["AwsConfig", "AwsProvider", "AwsSession", "RoleCredentialCache", "translate"]
