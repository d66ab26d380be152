"""Every public name of wsp carries a docstring of its own (issue 16).

``help()`` must not show a base class's text for an override: a method
inherits ``__doc__`` through ``inspect.getdoc``, so the check reads each
class's own ``__dict__``.  It runs on whichever build is in use, compiled
classes included (their methods are descriptors whose ``__doc__`` starts with
the signature ``embedsignature`` adds; a docstring that is only that line
does not count).
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import wsp
from wsp.spi.provider import WSPPROC_TABLE, ServiceProvider


def _public_modules() -> list:
    mods = [wsp]
    for info in pkgutil.walk_packages(wsp.__path__, "wsp."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        mods.append(importlib.import_module(info.name))
    return mods


def _public_names(mod) -> list[tuple[str, object]]:
    names = getattr(mod, "__all__", None)
    if names is not None:
        return [(n, getattr(mod, n)) for n in names]
    out = []
    for n, obj in vars(mod).items():
        if n.startswith("_") or inspect.ismodule(obj):
            continue
        if getattr(obj, "__module__", None) != mod.__name__:
            continue
        out.append((n, obj))
    return out


def _own_doc(obj) -> str:
    """The docstring `obj` carries itself, without an embedded signature."""
    if isinstance(obj, (classmethod, staticmethod)):
        obj = obj.__func__
    elif isinstance(obj, property):
        obj = obj.fget if obj.__doc__ is None else obj
    doc = obj.__doc__ if isinstance(obj.__doc__, str) else ""
    lines = doc.strip().splitlines()
    name = getattr(obj, "__name__", None)
    # embedsignature's first line: "Class.name(args) -> ret"
    if lines and name and re.match(rf"^(?:[\w.]+\.)?{re.escape(name)}\(.*\)( -> .*)?$",
                                   lines[0].strip()):
        lines = lines[1:]
    return "\n".join(lines).strip()


def _documentable(obj) -> bool:
    return (inspect.isfunction(obj) or inspect.isbuiltin(obj) or inspect.isclass(obj)
            or inspect.ismethoddescriptor(obj) or inspect.isdatadescriptor(obj)
            or isinstance(obj, (classmethod, staticmethod, property)))


def _members(cls):
    for name, attr in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(attr, (classmethod, staticmethod, property)) or inspect.isfunction(attr) \
                or inspect.ismethoddescriptor(attr):
            yield name, attr
        elif inspect.isgetsetdescriptor(attr) and attr.__doc__ is not None:
            # a compiled class's property; its attributes (getset descriptors
            # without a __doc__) are fields, like the pure twin's slots
            yield name, attr


def _collect():
    seen: set[int] = set()
    items = []
    for mod in _public_modules():
        for name, obj in _public_names(mod):
            if not _documentable(obj) or id(obj) in seen:
                continue
            seen.add(id(obj))
            qual = f"{getattr(obj, '__module__', mod.__name__)}.{getattr(obj, '__qualname__', name)}"
            items.append((qual, obj))
            if inspect.isclass(obj):
                for mname, attr in _members(obj):
                    items.append((f"{qual}.{mname}", attr))
    return items


def test_every_public_name_has_its_own_docstring():
    items = _collect()
    assert len(items) > 300
    missing = sorted(qual for qual, obj in items if not _own_doc(obj))
    assert not missing, f"{len(missing)} public names lack a docstring:\n" + "\n".join(missing)


def test_overrides_do_not_show_the_unsupported_placeholder():
    """A provider's WSP entry, wherever in its MRO it is defined (the sim
    Provider takes most from mixins), shows the placeholder only when it is
    the base's own unsupported entry."""
    base = {name: ServiceProvider.__dict__[name] for name in WSPPROC_TABLE}
    wrong = []
    for qual, cls in _collect():
        if not (inspect.isclass(cls) and issubclass(cls, ServiceProvider)):
            continue
        for name in WSPPROC_TABLE:
            owner = next(k for k in cls.__mro__ if name in k.__dict__)
            entry = owner.__dict__[name]
            if entry is base[name]:
                continue
            doc = _own_doc(entry)
            if doc == base[name].__doc__ or "not supported by this provider" in doc:
                wrong.append(f"{qual}.{name} (defined in {owner.__qualname__})")
    assert not wrong, "overrides showing the placeholder:\n" + "\n".join(wrong)
