"""YAML loading with clear errors (PyYAML is imported lazily)."""

import os

from edgekit.errors import ConfigError


def load_yaml(path):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ConfigError("file not found: %s" % path, hint="check the path")
    try:
        import yaml
    except ImportError:
        raise ConfigError("reading %s needs PyYAML" % path, hint="pip install pyyaml (apt: python3-yaml)")
    try:
        with open(path) as handle:
            data = yaml.safe_load(handle)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = " at line %d" % (mark.line + 1) if mark is not None else ""
        raise ConfigError("%s is not valid YAML%s: %s" % (path, where, getattr(exc, "problem", exc)),
                          hint="fix the file")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("%s must hold a mapping of keys to values" % path, hint="fix the file")
    return data
