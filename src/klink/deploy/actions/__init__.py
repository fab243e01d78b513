"""Actions by concern; ``REGISTRY`` maps an action name to its function (see ``registry.py``)."""
