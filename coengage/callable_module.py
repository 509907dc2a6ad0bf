"""Let a package's function share its name with a submodule: ``graph.build(...)`` next to
``graph/build.py``, ``mining.mine(...)`` next to ``mining/mine.py``, ``lm.train(...)`` next to
``lm/train.py``.

Importing a submodule sets it as an attribute of its package, replacing a function of the
same name. :func:`callable_submodule` installs an import hook so that the submodule, once
imported, is a module object that is also callable and forwards calls to the package's
function; ``graph.build(...)`` therefore works before and after ``import graph.build``, and
``from graph.build import build_graph`` is unaffected.
"""

from __future__ import annotations

import importlib.abc
import sys
import types
from typing import Callable

_TARGETS: dict[str, Callable] = {}


class CallableModule(types.ModuleType):
    """A module whose call goes to the package-level API function of the same name."""

    def __call__(self, *args, **kwargs):
        return _TARGETS[self.__name__](*args, **kwargs)


class _Loader(importlib.abc.Loader):
    def __init__(self, inner):
        self._inner = inner

    def create_module(self, spec):
        return CallableModule(spec.name)

    def exec_module(self, module):
        self._inner.exec_module(module)

    def __getattr__(self, name):  # get_source, get_code, ... for tracebacks and inspect
        return getattr(self._inner, name)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname not in _TARGETS:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _Loader(spec.loader)
                return spec
        return None


_FINDER = _Finder()


def callable_submodule(fullname: str, function: Callable) -> None:
    """Make submodule ``fullname`` (e.g. ``"graph.build"``) callable as ``function`` once imported."""
    _TARGETS[fullname] = function
    module = sys.modules.get(fullname)
    if module is not None and not isinstance(module, CallableModule):
        module.__class__ = CallableModule
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
