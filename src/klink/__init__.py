"""Klink: immutable red-black deployments for services on cloud VMs.

Kept import-free on purpose: ``klink --help`` must start about as fast as Python.
"""

__version__ = "0.1.0"
