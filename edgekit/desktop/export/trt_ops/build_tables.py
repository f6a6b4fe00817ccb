"""Rebuild the TensorRT operator tables (``<series>.json``) from onnx-tensorrt's docs/operators.md.

The tables are data (facts from NVIDIA's documentation), committed beside this script. Each JSON
records where it came from: repository, ref, commit and file. To rebuild::

    git clone https://github.com/onnx/onnx-tensorrt /tmp/onnx-tensorrt
    python -m edgekit.desktop.export.trt_ops.build_tables /tmp/onnx-tensorrt

The docs are cross-checked against the parser's op registry at the same commit (the op names in
``DEFINE_BUILTIN_OP_IMPORTER(...)`` of builtin_op_importers.cpp / onnxOpImporters.cpp): each op gets
``importer`` (bool); where the docs say N but an importer exists, the op counts as supported and keeps
``docs_supported: false`` and a ``note``. ``io_dtypes`` lists the ONNX element types the parser's
``convertDtype`` maps for network inputs and outputs. Only names are taken from the code.

Restrictions written in prose are kept verbatim (``restrictions``) and, where a phrase can be checked
on an ONNX graph offline, also turned into machine-checkable ``checks`` (see ``PHRASES``); the lint
(``edgekit.desktop.export.lint``) interprets those check kinds.
"""

import json
import os
import re
import subprocess
import sys

REPO = "onnx/onnx-tensorrt"
FILE = "docs/operators.md"
# The parser's op registry at the same commit (op names only): a cross-check of the docs.
IMPORTER_FILES = ("builtin_op_importers.cpp", "onnxOpImporters.cpp")
IMPORTER_RE = re.compile(r"DEFINE_BUILTIN_OP_IMPORTER\((\w+)\)")
# The ONNX element types the parser maps to TensorRT types for network inputs/outputs (convertDtype).
DTYPE_FILES = ("onnx2trt_utils.cpp", "importerUtils.cpp")
# series -> ref of the newest docs of that release line in the repository
SERIES = {
    "8.2": "8.2-GA",      # JetPack 4.6 (TensorRT 8.2.1)
    "8.5": "8.5-GA",      # JetPack 5.1 (TensorRT 8.5.2); 8.6 shares the opset limit
    "10": "10.1-GA",      # newest 10.x release branch in the repository
}

_NAME = r"`(\w+)`"
# (regex on one restriction sentence, function(match) -> list of checks)
PHRASES = (
    (r"2D or 3D", lambda m: [{"kind": "input_rank", "input": 0, "ranks": [4, 5]}]),
    (r"Input rank must be >=(\d) & <=(\d)",
     lambda m: [{"kind": "input_rank", "input": 0, "ranks": list(range(int(m.group(1)), int(m.group(2)) + 1))}]),
    (r"Input must be (\d)D", lambda m: [{"kind": "input_rank", "input": 0, "ranks": [int(m.group(1))]}]),
    (r"Scales `(\w+)` and biases `(\w+)` must be initializers",
     lambda m: [{"kind": "constant_input", "input": m.group(1)}, {"kind": "constant_input", "input": m.group(2)}]),
    (r"Inputs (.*) must be initializers",
     lambda m: [{"kind": "constant_input", "input": name} for name in _ticks(m.group(1))]),
    (_NAME + r"(?: input)? must be (?:an? )?(?:initializer|initailizer|constant tensor|build-time constant)",
     lambda m: [{"kind": "constant_input", "input": m.group(1)}]),
    (_NAME + r" must be (?:zero|0)$", lambda m: [{"kind": "zero_input", "input": m.group(1)}]),
    (_NAME + r" output tensor unsupported", lambda m: [{"kind": "unused_output", "output": m.group(1)}]),
    (_NAME + r" must be empty or all ones", lambda m: [{"kind": "attr_all_ones", "attr": m.group(1)}]),
    (_NAME + r"(?: attribute)? must be (\d+)$",
     lambda m: [{"kind": "attr_equals", "attr": m.group(1), "value": int(m.group(2))}]),
    (_NAME + r" is not supported", lambda m: [{"kind": "attr_default", "attr": m.group(1)}]),
    (r"Supported resize transformation modes: (.*)",
     lambda m: [{"kind": "attr_in", "attr": "coordinate_transformation_mode", "values": _ticks(m.group(1))}]),
    (r"Supported resize modes: (.*)", lambda m: [{"kind": "attr_in", "attr": "mode", "values": _ticks(m.group(1))}]),
    (r"Supported nearest modes: (.*)",
     lambda m: [{"kind": "attr_in", "attr": "nearest_mode", "values": _ticks(m.group(1)), "when": {"mode": "nearest"}}]),
    (r"Antialiasing is not supported", lambda m: [{"kind": "attr_equals", "attr": "antialias", "value": 0}]),
    (r"Dynamic input shapes are unsupported|must have static dimensions", lambda m: [{"kind": "static_input"}]),
)


# Restrictions the docs do not state but the parser asserts unconditionally (read in the importer of the
# same commit; each names the assertion so it can be found again). Conditional asserts that a fallback path
# avoids (8.2's Clip min/max: tensors take an element-wise path) are deliberately not listed.
CODE_CHECKS = {
    "8.2": {
        "Resize": [{"kind": "constant_input", "input": "scales", "unless_input": "sizes",
                    "from": "builtin_op_importers.cpp: ASSERT(scales.is_weights() && \"Resize scales must be an "
                            "initializer!\")"}],
    },
}


def _ticks(text):
    return re.findall(r"`(\w+)`", text)


def checks_for(restrictions):
    checks = []
    sentences = re.split(r"<br\s*/?>|\.\s+|\.$", restrictions)
    for sentence in sentences:
        sentence = sentence.strip().rstrip(".")
        for pattern, make in PHRASES:
            match = re.search(pattern, sentence)
            if match:
                checks.extend(make(match))
                break
    return checks


def parse(markdown):
    """operators.md text -> (max_opset, min_opset, notes, {op: entry})."""
    head = markdown.split("## Operator Support Matrix")[0]
    max_opset = int(re.search(r"(?:up to Opset|to opset) (\d+)", head, re.I).group(1))
    low = re.search(r"range of opset (\d+)", head, re.I)
    notes = [line.lstrip("> ").strip() for line in head.splitlines() if line.startswith("> Note")]
    types_line = re.search(r"following ONNX data types: (.*)", head)
    ops = {}
    for line in markdown.split("## Operator Support Matrix", 1)[1].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not line.startswith("|") or cells[0] in ("Operator", "") or cells[0].startswith("-"):
            continue
        name, supported = cells[0], cells[1]
        restrictions = cells[3].replace("\\.", ".") if len(cells) > 3 else ""
        ops[name] = {
            "supported": supported.startswith("Y"),
            "experimental": "EXPERIMENTAL" in supported,
            "types": [t.strip() for t in cells[2].split(",") if t.strip()] if len(cells) > 2 else [],
            "restrictions": restrictions,
            "checks": checks_for(restrictions),
        }
    return {"max_opset": max_opset, "min_opset": int(low.group(1)) if low else None, "notes": notes,
            "data_types": [re.sub(r"^and ", "", t.strip()) for t in types_line.group(1).split(",")] if types_line else [],
            "ops": ops}


def _importers(git, ref):
    """(file, set of op names with a DEFINE_BUILTIN_OP_IMPORTER) at ``ref``."""
    for name in IMPORTER_FILES:
        try:
            text = subprocess.check_output(git + ["show", "%s:%s" % (ref, name)], stderr=subprocess.DEVNULL)
        except subprocess.CalledProcessError:
            continue
        return name, set(IMPORTER_RE.findall(text.decode("utf-8", "replace")))
    return None, None


def _io_dtypes(git, ref):
    """(file, sorted ONNX element type names convertDtype accepts) at ``ref``."""
    for name in DTYPE_FILES:
        try:
            text = subprocess.check_output(git + ["show", "%s:%s" % (ref, name)], stderr=subprocess.DEVNULL)
        except subprocess.CalledProcessError:
            continue
        text = text.decode("utf-8", "replace")
        start = text.find("bool convertDtype(")
        if start < 0:
            continue
        body = text[start:text.find("default:", start)]
        return name, sorted(set(re.findall(r"TensorProto::(\w+)", body)))
    return None, None


def cross_check(ops, importers, importer_file):
    """Mark each op with whether the parser registers an importer for it. Where the docs say N but an
    importer exists (8.2's Reciprocal), the op is supported: the parser is what runs on the device."""
    if importers is None:
        return
    for name, entry in ops.items():
        entry["importer"] = name in importers
        if entry["importer"] and not entry["supported"]:
            entry["supported"] = True
            entry["docs_supported"] = False
            entry["note"] = "docs/operators.md says N, but %s at this commit registers an importer" % importer_file
        elif entry["supported"] and not entry["importer"]:
            entry["note"] = "docs/operators.md says Y, but %s has no importer of this name" % importer_file


def build(repo_dir, out_dir=None):
    out_dir = out_dir or os.path.dirname(os.path.abspath(__file__))
    for series, ref in SERIES.items():
        git = ["git", "--git-dir", repo_dir if repo_dir.endswith(".git") or os.path.isfile(
            os.path.join(repo_dir, "HEAD")) else os.path.join(repo_dir, ".git")]
        text = subprocess.check_output(git + ["show", "%s:%s" % (ref, FILE)]).decode("utf-8")
        commit = subprocess.check_output(git + ["rev-parse", ref]).decode().strip()
        table = parse(text)
        importer_file, importers = _importers(git, ref)
        cross_check(table["ops"], importers, importer_file)
        for op, checks in CODE_CHECKS.get(series, {}).items():
            table["ops"][op]["checks"].extend(checks)
        dtype_file, io_dtypes = _io_dtypes(git, ref)
        table["io_dtypes"] = io_dtypes
        int64_cast = any("INT64 to INT32" in n for n in table["notes"])
        data = {
            "tensorrt_series": series,
            "source": {"repo": REPO, "ref": ref, "commit": commit, "file": FILE,
                       "url": "https://github.com/%s/blob/%s/%s" % (REPO, commit, FILE),
                       "importers_file": importer_file, "io_dtypes_file": dtype_file},
            "int64_cast_to_int32": int64_cast,
        }
        data.update(table)
        path = os.path.join(out_dir, "%s.json" % series)
        with open(path, "w") as handle:
            json.dump(data, handle, indent=1, sort_keys=True)
            handle.write("\n")
        print("%s: %d ops (%d unsupported), opset <= %d, from %s@%s; docs vs importers: %s" % (
            path, len(table["ops"]), sum(not o["supported"] for o in table["ops"].values()),
            table["max_opset"], ref, commit[:12],
            ", ".join("%s: %s" % (k, v["note"]) for k, v in table["ops"].items() if v.get("note")) or "agree"))


if __name__ == "__main__":
    build(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
