"""MkDocs hook: the reference pages that are generated from the code at build time, so they cannot drift.

- ``reference/cli.md``: every ``edgekit`` subcommand (and every sub-action below it, recursively) rendered
  from the real argparse parser, ``edgekit.cli.build_parser()``: description, usage and one row per option.
- ``reference/serve-config.md``: every key of the daemon's YAML, rendered from the schema in
  ``edgekit/service/config.py`` (type, default, allowed values, the flag that sets it, the key's own doc).

A page asks for a table with a marker line (``<!-- generated: cli -->``, ``<!-- generated: serve-config -->``,
``<!-- generated: results -->``), optionally followed by a note for readers of the raw file and
``<!-- /generated -->``; the hook replaces all of it. The page's hand-written text around it stays as written.

- ``reference/metadata.md``: the decoders (``<!-- generated: decoders -->``), from ``edgekit.vision.decoders.DECODERS``.
- ``performance.md``: ``benchmarks/RESULTS.md`` included, and links to it pointed at the included copy.
"""

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Keys of the serve schema whose Key(...) carries no doc string: described here. A key in neither place
# fails the build, so a new key cannot go undocumented.
SERVE_KEY_DOCS = {
    "model.backend": "inference backend; `auto` takes the first installed of tensorrt, onnxruntime, opencv",
    "source.read_timeout_s": "a camera read that takes longer fails and the source reconnects",
    "source.reconnect_initial_s": "first wait before reopening a source that failed (doubles each time)",
    "source.reconnect_max_s": "longest wait between two reconnection attempts",
    "pipeline.workers": "frames in flight (auto: one per core, at most 4, when every frame counts and "
                        "ONNX Runtime runs on the CPU; else 1)",
    "pipeline.chunk": "frames each worker takes at a time when the workers read the source themselves "
                      "(auto: up to 16, at most 32 MB and 0.1 s of work)",
    "outputs.jsonl.path": "append one JSON line per frame to this file",
    "outputs.jsonl.max_bytes": "rotate the file when the next line would pass this size",
    "outputs.jsonl.backups": "rotated files kept (`results.jsonl.1` ...), oldest deleted",
    "outputs.jsonl.queue": "records waiting for the writer thread; beyond it the oldest are dropped and counted",
    "outputs.http.token_file": "bearer token (first line of the file); required for a non-loopback `listen`",
    "outputs.http.max_streams": "MJPEG stream clients at once; more get 503",
    "outputs.http.max_request_bytes": "longest request line and headers (414 / 431 beyond)",
    "outputs.http.allowed_hosts": "Host-header names answered without a token besides the loopback names "
                                  "(DNS rebinding guard); bare names, no scheme, port or path",
    "outputs.mqtt.port": "broker port",
    "outputs.mqtt.topic_prefix": "topics are `<prefix>/<device>/{status,results,telemetry}`",
    "outputs.mqtt.qos": "QoS of results and telemetry (status is always QoS 1, retained)",
    "outputs.mqtt.buffer": "results kept while the broker is away; beyond it the oldest are dropped and counted",
    "outputs.mqtt.telemetry_interval_s": "seconds between retained telemetry messages",
    "outputs.mqtt.username": "broker user name",
    "outputs.mqtt.password_file": "file holding the broker password (never in the config itself)",
}


def _import_edgekit():
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    import edgekit.cli
    import edgekit.service.config

    return edgekit.cli, edgekit.service.config


def _cell(text):
    text = " ".join(str(text).split())
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _code(text):
    text = str(text)
    tick = "``" if "`" in text else "`"
    pad = " " if "`" in text else ""
    return "%s%s%s%s%s" % (tick, pad, text.replace("|", "\\|"), pad, tick)


def _subparsers(parser):
    """(name, subparser) for each sub-command of ``parser``, in the order they were added."""
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen = set()
            for name, sub in action.choices.items():
                if id(sub) not in seen:           # aliases point at the same parser
                    seen.add(id(sub))
                    out.append((name, sub))
    return out


def _option_rows(parser):
    formatter = parser._get_formatter()
    rows = []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        if action.help == argparse.SUPPRESS:
            continue
        if action.option_strings:
            names = ", ".join(action.option_strings)
            if action.nargs != 0:
                names += " " + formatter._format_args(action, formatter._get_default_metavar_for_optional(action))
        else:
            names = formatter._format_args(action, formatter._get_default_metavar_for_positional(action))
        help_text = formatter._expand_help(action) if action.help else ""
        if action.choices and action.metavar is not None:         # else the choices are in the name
            help_text += " (one of: %s)" % ", ".join(str(c) for c in action.choices)
        if action.required and action.option_strings:
            help_text += " (required)"
        rows.append("| %s | %s |" % (_code(names), _cell(help_text)))
    return rows


def _render_command(parser, path, level, out):
    name = " ".join(path)
    out.append("%s `%s`" % ("#" * level, name))
    out.append("")
    if parser.description:
        formatter = parser._get_formatter()        # wrapped as `--help` wraps it
        formatter.add_text(parser.description)
        out.append("```text")
        out.append(formatter.format_help().rstrip())
        out.append("```")
        out.append("")
    out.append("```text")
    out.append(parser.format_usage().strip())
    out.append("```")
    out.append("")
    rows = _option_rows(parser)
    if rows:
        out.append("| argument | meaning |")
        out.append("|---|---|")
        out.extend(rows)
        out.append("")
    for sub_name, sub in _subparsers(parser):
        _render_command(sub, path + [sub_name], min(level + 1, 6), out)


def cli_reference():
    cli, _ = _import_edgekit()
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "80"               # argparse wraps to the terminal: fix the width for the page
    try:
        parser = cli.build_parser()
        out = ["```text", parser.format_usage().strip(), "```", ""]
        out += ["| argument | meaning |", "|---|---|"] + _option_rows(parser) + [""]
        out += ["| command | what it does |", "|---|---|"]
        action = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)][0]
        helps = dict((c.dest, c.help) for c in action._choices_actions)
        for name, _sub in _subparsers(parser):
            out.append("| [`edgekit %s`](#edgekit-%s) | %s |" % (name, name, _cell(helps.get(name, ""))))
        out.append("")
        for name, sub in _subparsers(parser):
            _render_command(sub, ["edgekit", name], 2, out)
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old
    return "\n".join(out)


def _type_name(types, names):
    return " or ".join(names.get(t, t.__name__) for t in types)


def _walk_schema(schema, prefix=""):
    for name, spec in schema.items():
        key = prefix + name
        if isinstance(spec, dict):
            for item in _walk_schema(spec, key + "."):
                yield item
        else:
            yield key, spec


def serve_config_reference():
    _, config = _import_edgekit()
    flags = {}
    try:
        from edgekit.commands import serve

        for flag, key in getattr(serve, "FLAG_KEYS", ()):
            flags[key] = "--" + flag.replace("_", "-")
    except Exception:
        pass
    flags.setdefault("outputs.http.listen", "--http")
    flags.setdefault("outputs.mqtt.host", "--mqtt")
    flags.setdefault("source.loop", "--loop")
    flags.setdefault("source.realtime", "--fast (false)")
    names = dict(getattr(config, "TYPE_NAMES", {}))
    names.update({str: "string", int: "integer", float: "number", bool: "bool", type(None): "null",
                  list: "list", dict: "mapping"})
    out = ["| key | type | default | flag | meaning |", "|---|---|---|---|---|"]
    missing = []
    for key, spec in _walk_schema(config.SCHEMA):
        doc = spec.doc or SERVE_KEY_DOCS.get(key, "")
        if not doc:
            missing.append(key)
        default = "required" if spec.required else ("`%s`" % _yaml(spec.default))
        kind = _type_name(spec.types, names)
        if spec.path is True:
            kind = "path" + (" or null" if type(None) in spec.types else "")
        meaning = _cell(doc)
        if spec.choices:
            meaning += ". One of: " + ", ".join("`%s`" % _yaml(c) for c in spec.choices)
        out.append("| `%s` | %s | %s | %s | %s |" % (
            key, kind, default, ("`%s`" % flags[key]) if key in flags else "", meaning))
    if missing:
        raise RuntimeError("serve config keys without a description (add doc= in edgekit/service/config.py "
                           "or SERVE_KEY_DOCS in docs/hooks/generated.py): %s" % ", ".join(missing))
    return "\n".join(out)


def _yaml(value):
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    return value


def benchmark_results():
    """benchmarks/RESULTS.md, its title dropped and its headings one level down, its links made relative
    to docs/ (it is included in docs/performance.md)."""
    with open(os.path.join(ROOT, "benchmarks", "RESULTS.md")) as handle:
        lines = handle.read().splitlines()
    out = []
    for line in lines:
        if line.startswith("# "):
            continue
        if line.startswith("## "):
            line = "#" + line
        out.append(line.replace("](../docs/", "]("))
    return "\n".join(out)


def decoder_table():
    """Every decoder of ``edgekit.vision.decoders.DECODERS``: its ``type``, what it reads, how it is recognised."""
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    from edgekit.vision.decoders import DECODERS

    out = ["| `decoder.type` | what it decodes | recognised without edgekit metadata from |", "|---|---|---|"]
    for name in DECODERS:
        out.append("| `%s` | %s | %s |" % (name, _cell(DECODERS.get(name, "doc", "")), _cell(DECODERS.get(name, "seen", ""))))
    return "\n".join(out)


END_MARKER = "<!-- /generated -->"

GENERATORS = {
    "<!-- generated: cli -->": cli_reference,
    "<!-- generated: serve-config -->": serve_config_reference,
    "<!-- generated: results -->": benchmark_results,
    "<!-- generated: decoders -->": decoder_table,
}

# Links to files of the repository outside docs/ (they work on GitHub): where they point in the site.
OUTSIDE_LINKS = {
    "../benchmarks/RESULTS.md": "performance.md#all-results",
}


def on_page_markdown(markdown, page, config, files):
    for marker, generate in GENERATORS.items():
        if marker in markdown:
            # the marker, and a note for readers of the raw file up to the closing marker, give way to the table
            start = markdown.index(marker)
            end = markdown.find(END_MARKER, start)
            end = start + len(marker) if end < 0 else end + len(END_MARKER)
            markdown = markdown[:start] + generate() + markdown[end:]
    depth = page.file.src_uri.count("/")
    for target, site_target in OUTSIDE_LINKS.items():
        link = "](" + "../" * depth + target + ")"
        if link in markdown:
            markdown = markdown.replace(link, "](" + "../" * depth + site_target + ")")
    return markdown
