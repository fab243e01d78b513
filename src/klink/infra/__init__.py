"""Infrastructure as version-controlled files: definition -> live state -> plan -> apply.

Works like a controller, level-triggered: read the desired state (``infrastructure.yaml`` at a
commit, with the environment's ``infra`` values), read the live state through the provider,
compute the difference as a plan (data), apply it in order. A scheduled reconcile reports drift.
"""
