"""Moved to distbp/runtime.py (the Ray actors use it too); kept for old imports."""
from distbp.runtime import SETTINGS, keep_heap

__all__ = ["SETTINGS", "keep_heap"]
