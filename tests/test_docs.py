"""Documentation that runs (README.md and docs/).

- Every `edgekit ...` command shown in a shell block (and in the command tour's examples) parses with the
  real CLI, every subcommand has an example somewhere, and the README's two commands are the Makefile's.
- The README's relative links reach files of the repository, and their anchors headings of those files.
- Marked CPU examples run, as Polygraphy's tests/test_examples.py runs its READMEs: a ```sh block preceded
  by a marker line

      <!-- test: run name=NAME after=OTHER needs=desktop -->

  (every field optional) is run with bash in a temporary folder and must exit 0. `after=OTHER` runs the
  block in the folder OTHER's block left behind, after it (blocks that share an ancestor form one chain,
  run in one test); `needs=desktop` skips the chain where PyTorch is not installed (the Python 3.6 tier).
  `edgekit` on the PATH is this checkout's, and the folder has links to jetson/, models/ and deploy/.
- `mkdocs build --strict` passes (no broken link or anchor; validation settings in mkdocs.yml), where
  mkdocs is installed (the `docs` extra; not in the Python 3.6 tier).
"""

import glob
import os
import re
import shlex
import subprocess
import sys
import unicodedata

import pytest

from edgekit import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MARKER = re.compile(r"^<!--\s*test:\s*run\b(.*?)-->\s*$")
FENCE = re.compile(r"^```(\w*)\s*$")


def read(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def doc_paths():
    paths = [os.path.join(ROOT, "README.md")]
    paths += sorted(glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True))
    return [p for p in paths if os.sep + "hooks" + os.sep not in p]


def rel(path):
    return os.path.relpath(path, ROOT)


# -- every command shown parses ---------------------------------------------------------------------------

def command_lines():
    """(file, argv) of `edgekit ...` lines in shell blocks and tour tables (synopses with [ ] or | left out)."""
    found = []
    for path in doc_paths():
        text = read(path)
        blocks = re.findall(r"```(?:sh|bash|console|shell)\n(.*?)```", text, re.S)
        # the examples of the command tour table: `edgekit ...` spans ending table rows
        blocks.append("\n".join(re.findall(r"\| `(edgekit [^`]+)` \|[ \t]*$", text, re.M)))
        for block in blocks:
            joined = re.sub(r"\\\n\s*", " ", block)
            for line in joined.splitlines():
                line = line.split("&&")[0].strip()
                if line.startswith("$ "):
                    line = line[2:]
                if line.startswith("sudo "):
                    line = line[5:]
                if not line.startswith("edgekit ") or "[" in line or "|" in line.split("#")[0] or "..." in line:
                    continue
                argv = shlex.split(line.split(" > ")[0], comments=True)
                if len(argv) > 1 and argv[1].endswith(":"):       # printed output ("edgekit train: error: ...")
                    continue
                found.append((rel(path), argv[1:]))
    return found


def test_docs_show_an_example_of_every_command():
    names = set(argv[0] for _, argv in command_lines() if argv)
    missing = set(name for name, _ in cli.COMMANDS) - names
    assert not missing, "README.md and docs/ show no example of: %s" % sorted(missing)


@pytest.mark.parametrize("where,argv", command_lines(), ids=lambda a: a if isinstance(a, str) else " ".join(a)[:60])
def test_documented_command_parses(where, argv):
    parser = cli.build_parser()
    try:
        parser.parse_args(argv)
    except SystemExit as exc:
        assert exc.code == 0, "%s: command does not parse: edgekit %s" % (where, " ".join(argv))


def test_two_commands_come_first_and_exist_in_the_makefile():
    text = read(os.path.join(ROOT, "README.md"))
    assert text.index("make demo") < text.index("## A tour of every command")
    assert text.index("make test") < text.index("## A tour of every command")
    makefile = read(os.path.join(ROOT, "Makefile"))
    assert "\ndemo:" in makefile and "\ntest:" in makefile and "\ndocs:" in makefile
    assert "make test" in read(os.path.join(ROOT, ".ci", "run"))


def test_readme_stays_a_front_door():
    text = read(os.path.join(ROOT, "README.md"))
    assert len(text.splitlines()) <= 200
    assert "docs/board/serve.md" in text, "the README must link to how to serve a camera"


# -- the README's links -------------------------------------------------------------------------------------

def slug(heading):
    """Python-Markdown's toc slug of a heading's text (what MkDocs and, for these headings, GitHub use)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)        # [text](link) -> text
    text = text.replace("`", "").replace("*", "")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def anchors(path):
    text = re.sub(r"```.*?```", "", read(path), flags=re.S)
    return set(slug(m) for m in re.findall(r"^#{1,6} (.*?)\s*$", text, re.M))


def test_readme_links_reach_files_and_headings():
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", read(os.path.join(ROOT, "README.md"))):
        if re.match(r"^[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        full = os.path.join(ROOT, path) if path else os.path.join(ROOT, "README.md")
        if not os.path.exists(full):
            broken.append("%s (no such file)" % target)
        elif anchor and anchor not in anchors(full):
            broken.append("%s (no such heading)" % target)
    assert not broken, "README.md links that lead nowhere: %s" % ", ".join(broken)


# -- marked examples run ------------------------------------------------------------------------------------

class Block(object):
    def __init__(self, where, fields, language, code):
        self.where = where
        self.name = fields.get("name", where)
        self.after = fields.get("after")
        self.needs = fields.get("needs")
        self.language = language
        self.code = code


def marked_blocks():
    blocks = []
    for path in doc_paths():
        lines = read(path).splitlines()
        for i, line in enumerate(lines):
            match = MARKER.match(line)
            if not match:
                continue
            where = "%s:%d" % (rel(path), i + 1)
            fields = dict(f.split("=", 1) for f in match.group(1).split())
            j = i + 1
            while j < len(lines) and not lines[j].strip():
                j += 1
            fence = FENCE.match(lines[j]) if j < len(lines) else None
            if not fence:
                raise AssertionError("%s: a test marker must be followed by a ``` block" % where)
            end = j + 1
            while end < len(lines) and not lines[end].startswith("```"):
                end += 1
            blocks.append(Block(where, fields, fence.group(1), "\n".join(lines[j + 1:end]) + "\n"))
    return blocks


def chains():
    """Marked blocks grouped by their first ancestor, each chain in run order (parents before children)."""
    blocks = marked_blocks()
    by_name = dict((b.name, b) for b in blocks)
    for b in blocks:
        assert b.language in ("sh", "bash"), "%s: only sh/bash blocks can be run, not %r" % (b.where, b.language)
        assert b.after is None or b.after in by_name, "%s: after=%s names no marked block" % (b.where, b.after)

    def root(b):
        seen = set()
        while b.after:
            assert b.name not in seen, "%s: the after= names go round in a circle" % b.where
            seen.add(b.name)
            b = by_name[b.after]
        return b

    def depth(b):
        return 0 if not b.after else 1 + depth(by_name[b.after])

    groups = {}
    for b in blocks:
        groups.setdefault(root(b).name, []).append(b)
    return [(name, sorted(members, key=depth)) for name, members in sorted(groups.items())]


def test_markers_are_well_formed():
    assert chains(), "no marked example in README.md or docs/"


def _desktop_available():
    try:
        import torch  # noqa: F401
        import onnx  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("name,blocks", chains(), ids=lambda a: a if isinstance(a, str) else "")
def test_marked_examples_run(name, blocks, tmp_path):
    if any(b.needs == "desktop" for b in blocks) and not _desktop_available():
        pytest.skip("the %s examples need the desktop side (torch, onnx)" % name)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "edgekit"
    shim.write_text("#!/bin/sh\nexec %s -m edgekit \"$@\"\n" % shlex.quote(sys.executable))
    shim.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    for name_ in ("jetson", "models", "deploy"):
        os.symlink(os.path.join(ROOT, name_), str(work / name_))
    env = dict(os.environ)
    env["PATH"] = str(bin_dir) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("EDGEKIT_ROOT", None)
    env["EDGEKIT_CACHE_DIR"] = str(tmp_path / "engines")
    for block in blocks:
        proc = subprocess.Popen(["bash", "-e", "-o", "pipefail", "-c", block.code], cwd=str(work), env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            output, _ = proc.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
            raise AssertionError("%s: the example did not end within 240 s:\n%s" % (block.where, output.decode()))
        assert proc.returncode == 0, "%s: the example exited %d:\n%s\n--- output ---\n%s" % (
            block.where, proc.returncode, block.code, output.decode(errors="replace")[-4000:])


# -- the site builds ----------------------------------------------------------------------------------------

def _generated():
    """The MkDocs hook module (docs/hooks/generated.py)."""
    sys.path.insert(0, os.path.join(ROOT, "docs", "hooks"))
    try:
        import generated
    finally:
        sys.path.pop(0)
    return generated


def test_generated_cli_reference_names_every_option():
    generated = _generated()
    page = generated.cli_reference()
    parser = cli.build_parser()
    todo = [(["edgekit"], parser)]
    while todo:
        path, p = todo.pop()
        for name, sub in generated._subparsers(p):
            assert "`%s`" % " ".join(path + [name]) in page
            todo.append((path + [name], sub))
        for action in p._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert option in page, "CLI reference lacks %s of %s" % (option, " ".join(path))


def test_generated_decoder_table_names_every_decoder():
    from edgekit.vision.decoders import DECODERS

    table = _generated().decoder_table()
    assert "<!-- generated: decoders -->" in read(os.path.join(ROOT, "docs", "reference", "metadata.md"))
    for name in DECODERS:
        assert "| `%s` |" % name in table
        assert DECODERS.get(name, "doc") and DECODERS.get(name, "seen"), name


def test_mkdocs_build_strict(tmp_path):
    pytest.importorskip("mkdocs", reason="mkdocs is in the `docs` extra, not installed here")
    pytest.importorskip("material", reason="mkdocs-material is in the `docs` extra, not installed here")
    env = dict(os.environ)
    env["NO_MKDOCS_2_WARNING"] = "1"
    proc = subprocess.Popen([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-f",
                             os.path.join(ROOT, "mkdocs.yml"), "-d", str(tmp_path / "site")], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, "mkdocs build --strict failed:\n%s" % output.decode(errors="replace")
    for page in ("index.html", "reference/cli/index.html", "reference/serve-config/index.html"):
        assert (tmp_path / "site" / page).exists(), page
    cli_page = (tmp_path / "site" / "reference" / "cli" / "index.html").read_text()
    assert "edgekit serve" in cli_page and "--token-file" in cli_page


# -- the code points at pages that exist --------------------------------------------------------------------

def test_code_references_documentation_that_exists():
    missing, stale = [], []
    ours = set(n[:-3] if n.endswith(".md") else n for n in os.listdir(os.path.join(ROOT, "docs")))
    for folder in ("edgekit", "tests", "benchmarks", "jetson", "deploy", ".ci"):
        for dirpath, _dirs, files in os.walk(os.path.join(ROOT, folder)):
            for name in files:
                if not name.endswith((".py", ".md", ".sh", ".yml", ".yaml", ".service")) and name != "run":
                    continue
                path = os.path.join(dirpath, name)
                if path == os.path.abspath(__file__):
                    continue
                text = read(path)
                for page in re.findall(r"\bdocs/[\w/.-]+?\.md\b", text):
                    # docs/<a folder or page of ours>/...: other projects' docs/... paths are left alone
                    if page.split("/")[1].replace(".md", "") in ours and not os.path.exists(os.path.join(ROOT, page)):
                        missing.append("%s: %s" % (rel(path), page))
                if re.search(r"\.\./shared/|contract C\d", text):
                    stale.append(rel(path))
    assert not missing, "references to pages that do not exist: %s" % missing
    assert not stale, "references to design notes outside the repository: %s" % stale
