"""JSON Schemas of ``infrastructure.yaml`` and of the environment record's ``infra`` key.

The schema checks shape (types, required fields, ranges); ``model.py`` then checks what a schema
cannot (references between resources, names that belong to the app). Both report every problem
with the dotted path of its field.
"""

from __future__ import annotations

from typing import Any

RESOURCE_NAME = r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$"  # ELBv2's rule, shared by every kind
ROLE_NAME = r"^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$"
PORTS = {
    "oneOf": [
        {"type": "integer", "minimum": 0, "maximum": 65535},
        {"type": "string", "pattern": r"^\d{1,5}(-\d{1,5})?$"},
    ]
}
POLICY_DOCUMENT = {
    "type": "object",
    "required": ["Version", "Statement"],
    "properties": {
        "Version": {"enum": ["2012-10-17", "2008-10-17"]},
        "Statement": {"type": "array", "minItems": 1, "items": {"type": "object"}},
    },
}

RULE: dict[str, Any] = {
    "oneOf": [
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["use"],
            "properties": {"use": {"type": "string", "minLength": 1}},
        },
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["from"],
            "properties": {
                "protocol": {"enum": ["tcp", "udp", "icmp", "all"]},
                "ports": PORTS,
                "from": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"type": "string", "minLength": 1},
                },
            },
        },
    ]
}

_EGRESS_RULE: dict[str, Any] = {
    "oneOf": [
        RULE["oneOf"][0],
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["to"],
            "properties": {
                "protocol": {"enum": ["tcp", "udp", "icmp", "all"]},
                "ports": PORTS,
                "to": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"type": "string", "minLength": 1},
                },
            },
        },
    ]
}

DEFINITION_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "infrastructure.yaml",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "prune": {"type": "boolean"},
        "securityGroups": {
            "type": "object",
            "propertyNames": {"pattern": RESOURCE_NAME},
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "description": {"type": "string", "minLength": 1, "maxLength": 255},
                    "ingress": {"type": "array", "items": RULE},
                    "egress": {"type": "array", "items": _EGRESS_RULE},
                },
            },
        },
        "targetGroups": {
            "type": "object",
            "propertyNames": {"pattern": RESOURCE_NAME},
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "required": ["port"],
                "properties": {
                    "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                    "protocol": {"enum": ["HTTP", "HTTPS"]},
                    "frontendPort": {"type": "integer", "minimum": 1, "maximum": 65535},
                    "deregistrationDelaySeconds": {
                        "type": "integer",
                        "minimum": 0,
                        "maximum": 3600,
                    },
                    "healthCheck": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "path": {"type": "string", "pattern": "^/"},
                            # AWS's own minimums (5 s, 2) are checked for aws environments
                            # (model.AWS_HEALTH_MINIMUMS); HAProxy checks faster locally.
                            "intervalSeconds": {"type": "integer", "minimum": 1, "maximum": 300},
                            "healthyThreshold": {"type": "integer", "minimum": 1, "maximum": 10},
                            "unhealthyThreshold": {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": 10,
                            },
                        },
                    },
                },
            },
        },
        "loadBalancers": {
            "type": "object",
            "propertyNames": {"pattern": RESOURCE_NAME},
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "required": ["subnets"],
                "properties": {
                    "scheme": {"enum": ["internet-facing", "internal"]},
                    "subnets": {
                        "oneOf": [
                            {"type": "string", "minLength": 1},
                            {
                                "type": "array",
                                "minItems": 1,
                                "items": {"type": "string", "pattern": "^subnet-"},
                            },
                        ]
                    },
                    "securityGroups": {"type": "array", "items": {"type": "string"}},
                    "listeners": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["port", "targetGroup"],
                            "properties": {
                                "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                                "protocol": {"enum": ["HTTP", "HTTPS"]},
                                "targetGroup": {"type": "string"},
                                # an ARN, or the name of one of the environment's certificates
                                "certificate": {"type": "string", "minLength": 1},
                            },
                        },
                    },
                },
            },
        },
        "role": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "pattern": ROLE_NAME},
                "policies": {
                    "type": "object",
                    "additionalProperties": {
                        "oneOf": [{"type": "string", "minLength": 1}, POLICY_DOCUMENT]
                    },
                },
            },
        },
    },
}

ENV_INFRA_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "environment metadata: infra",
    "type": "object",
    "properties": {
        "vpc": {"type": "string", "pattern": "^vpc-"},
        "subnets": {
            "type": "object",
            "additionalProperties": {
                "type": "array",
                "minItems": 1,
                "items": {"type": "string", "pattern": "^subnet-"},
            },
        },
        "securityGroups": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "ingressRules": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": RULE["oneOf"][1]},
        },
        "certificates": {
            "type": "object",
            "additionalProperties": {"type": "string", "pattern": "^arn:"},
        },
        "policies": {"type": "object", "additionalProperties": POLICY_DOCUMENT},
        "defaultPolicies": {"type": "object", "additionalProperties": POLICY_DOCUMENT},
        "drift": {"type": "boolean"},
        "driftIntervalMinutes": {"type": "integer", "minimum": 1},
        "autoApply": {"type": "boolean"},
    },
}
