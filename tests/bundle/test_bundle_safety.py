"""Archive safety: hand-crafted malicious tarballs are refused before anything leaves the bundle."""

import os
import tarfile

import pytest

from bundle_helpers import file_info, read_members, write_tar
from edgekit.bundle import install, verify_bundle
from edgekit.bundle import safety
from edgekit.errors import BundleError


def _link(name, target, kind=tarfile.SYMTYPE):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def _special(name, kind):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.devmajor, info.devminor = 1, 3
    return info


MALICIOUS = [
    ("dotdot", [(file_info("../escaped.txt"), b"x")], "'..' component"),
    ("dotdot-nested", [(file_info("wheels/../../escaped.txt"), b"x")], "'..' component"),
    ("absolute", [(file_info("/tmp/edgekit-escaped.txt"), b"x")], "absolute path"),
    ("char-device", [(_special("null", tarfile.CHRTYPE), None)], "character device"),
    ("block-device", [(_special("sda", tarfile.BLKTYPE), None)], "block device"),
    ("fifo", [(_special("pipe", tarfile.FIFOTYPE), None)], "FIFO"),
    ("symlink-out", [(_link("model.onnx", "/etc/passwd"), None)], "symbolic link to '/etc/passwd', which leaves"),
    ("symlink-up", [(_link("wheels/x", "../../outside"), None)], "leaves the bundle"),
    ("hardlink-out", [(_link("model.onnx", "../../etc/shadow", tarfile.LNKTYPE), None)], "hard link"),
]


@pytest.mark.parametrize("name, entries, match", MALICIOUS, ids=[m[0] for m in MALICIOUS])
def test_malicious_members_are_refused(tmp_path, bundle_for, name, entries, match):
    good = read_members(bundle_for())
    # a valid bundle with the malicious member appended: refusal must come from the safety check
    all_entries = [(file_info(n), data) for n, data in good.items()] + entries
    bad = write_tar(tmp_path / ("%s.tar.gz" % name), all_entries)
    with pytest.raises(BundleError, match=match):
        verify_bundle(bad)
    root = tmp_path / "root"
    with pytest.raises(BundleError, match=match):
        install(bad, str(root))
    assert not (root / "current").exists()
    assert os.listdir(str(root / "releases")) == []          # staging removed
    assert not (tmp_path / "escaped.txt").exists() and not os.path.exists("/tmp/edgekit-escaped.txt")


def test_link_inside_the_bundle_is_not_a_file(tmp_path, bundle_for):
    good = read_members(bundle_for())
    entries = [(file_info(n), d) for n, d in good.items()] + [(_link("alias.onnx", "model.onnx"), None)]
    with pytest.raises(BundleError, match="is a link; edgekit bundles hold only regular files"):
        verify_bundle(write_tar(tmp_path / "l.tar.gz", entries))


def test_oversized_member_is_refused_from_its_header(tmp_path):
    # header claims 2 GiB; the data is not there: the check must fire before any read
    info = file_info("model.onnx", size=2 << 30)
    path = tmp_path / "huge.tar.gz"
    import gzip

    with gzip.open(str(path), "wb") as handle:
        handle.write(info.tobuf(format=tarfile.GNU_FORMAT))
    with pytest.raises(BundleError, match="over the 1024 MiB limit"):
        verify_bundle(str(path))


def test_too_many_members_are_refused(tmp_path):
    entries = [(file_info("f%04d" % i), b"") for i in range(safety.MAX_MEMBERS + 1)]
    with pytest.raises(BundleError, match="more than 1000 members"):
        verify_bundle(write_tar(tmp_path / "many.tar.gz", entries))


@pytest.mark.parametrize("name, expected", [("./a/b", "a/b"), ("a//b/./c", "a/b/c"), ("manifest.json", "manifest.json")])
def test_normalize_name(name, expected):
    assert safety.normalize_name(name) == expected
