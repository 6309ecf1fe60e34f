"""Make a stage module callable as its :mod:`zkml.api` entry point.

``zkml.prove``, ``zkml.verify`` and ``zkml.reproduce`` are both modules (the
pipeline stages, as the design's package table names them) and the documented
functions of ``import zkml``. Once a submodule is imported, Python sets the
package attribute to the module, so the module itself forwards calls to the
API function: ``zkml.verify(bundle)`` and ``from zkml.verify import verify_bundle``
both work.
"""

from __future__ import annotations

import sys
import types
from typing import Any


def callable_module(name: str, function: str) -> None:
    """Let ``sys.modules[name](...)`` call ``zkml.api.<function>(...)``."""

    class _Module(types.ModuleType):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            from zkml import api

            return getattr(api, function)(*args, **kwargs)

    sys.modules[name].__class__ = _Module
