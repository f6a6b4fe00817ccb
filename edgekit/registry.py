"""Registries: a name -> ``"package.module:attr"`` table whose targets are imported on first use.

The backends (``edgekit.runners``), the output decoders (``edgekit.vision.decoders``) and the frame
sources (``edgekit.sources``) are each one ``Registry``: every list of names the CLI, the config
schema or the metadata validation shows is read from it, so adding a backend, a decoder or a source
is one ``register`` call plus its module.

    DECODERS = Registry("decoder", unknown=MetadataError)
    DECODERS.register("yolov8", "edgekit.vision.yolo:decode_v8")
    DECODERS.load("yolov8")             # imports edgekit.vision.yolo now, returns decode_v8

A name that is not registered raises ``unknown`` (one line listing the names); a target that
cannot be imported raises ``unavailable`` with the entry's ``hint`` (how to install what is
missing). Both are ``UserError``s, so the CLI prints one line and exits 2.
"""

import collections
import importlib

from edgekit.errors import UserError


def load_target(target, error=UserError, what=None, hint=None):
    """Import ``"package.module:attr"`` and return the attribute; a failure raises ``error``."""
    module_name, sep, attr = str(target).partition(":")
    if not sep or not module_name or not attr:
        raise error("%s: %r is not of the form package.module:attr" % (what or "target", target),
                    hint=hint or "write it as package.module:attr")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise error("%s cannot be loaded: importing %s failed (%s)" % (what or target, module_name, exc),
                    hint=hint or "check that edgekit and what it needs are installed")
    try:
        return getattr(module, attr)
    except AttributeError:
        raise error("%s cannot be loaded: %s has no %s" % (what or target, module_name, attr),
                    hint=hint or "check the name after the colon")


class Registry(object):
    """Names in registration order, each with its lazy target and free-form facts (``info``)."""

    def __init__(self, kind, unknown=UserError, unavailable=None, extra=()):
        self.kind = kind
        self.unknown = unknown
        self.unavailable = unavailable or unknown
        self.extra = tuple(extra)          # names callers accept besides the entries (e.g. "auto")
        self._entries = collections.OrderedDict()

    def register(self, name, target, first=False, **info):
        """Add (or replace) ``name``, last in order (``first``: before every other entry: order is
        a preference where one matters, e.g. ``auto``'s backends). ``info`` holds facts other code
        reads (``hint``: what to install)."""
        if not isinstance(name, str) or not name:
            raise ValueError("a %s name must be a non-empty string" % self.kind)
        entry = dict(info)
        entry["target"] = target
        self._entries[name] = entry
        if first:
            self._entries.move_to_end(name, last=False)
        return name

    def unregister(self, name):
        self._entries.pop(name, None)

    def names(self):
        return list(self._entries)

    def choices(self):
        """What a user may write: the extra names, then the entries."""
        return list(self.extra) + self.names()

    def __contains__(self, name):
        return name in self._entries

    def __iter__(self):
        return iter(list(self._entries))

    def __len__(self):
        return len(self._entries)

    def info(self, name):
        """The entry of ``name`` (target and facts); an unknown name raises ``unknown``."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise self.unknown("unknown %s %r" % (self.kind, name), hint="use one of: %s" % ", ".join(self.choices()))

    def get(self, name, key, default=None):
        return self.info(name).get(key, default)

    def load(self, name):
        """The object ``name`` stands for, imported now."""
        entry = self.info(name)
        return load_target(entry["target"], error=self.unavailable, what="%s %s" % (self.kind, name),
                           hint=entry.get("hint"))
