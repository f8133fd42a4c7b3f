"""Conformance suites that every backend runs (importable, so third-party backends can too).

Each suite is a class without a ``Test`` prefix; a backend's tests subclass it, supply
its fixtures and run the same test bodies on a fake and on a real server. Needs pytest
(and hypothesis, for the index suite's property and stateful tests).
"""

from .index import IndexConformance
from .store import DataStoreConformance

__all__ = ["DataStoreConformance", "IndexConformance"]
