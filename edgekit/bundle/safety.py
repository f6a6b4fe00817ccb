"""Archive safety: which tar members a bundle may hold.

A bundle comes from the network; unpacking it must never write outside its release directory,
create device nodes, or fill the disk. ``check_member`` refuses, with one clear reason:
absolute paths, ``..`` components, device files and FIFOs, hard or symbolic links whose target
leaves the bundle, oversized members, and anything tar can describe that a bundle never needs
(sparse or contiguous files, GNU long-name oddities are resolved by tarfile before we see them).
"""

import posixpath
import tarfile

from edgekit.errors import BundleError

MAX_MEMBER_BYTES = 1 << 30          # 1 GiB: an ONNX model for a 4 GB board is far smaller
MAX_TOTAL_BYTES = 2 << 30           # 2 GiB unpacked in all
MAX_MEMBERS = 1000
MAX_NAME_CHARS = 255

_KIND = (
    (tarfile.CHRTYPE, "a character device"),
    (tarfile.BLKTYPE, "a block device"),
    (tarfile.FIFOTYPE, "a FIFO"),
    (tarfile.CONTTYPE, "a contiguous file"),
    (tarfile.GNUTYPE_SPARSE, "a sparse file"),
)


def _refuse(name, why):
    raise BundleError("bundle member %r %s" % (name, why),
                      hint="refusing to unpack it; rebuild the bundle with `edgekit bundle`")


def normalize_name(name):
    """The member's path inside the bundle ('./a/b' -> 'a/b'); refuses absolute paths and '..'."""
    if not name or "\x00" in name or len(name) > MAX_NAME_CHARS:
        _refuse(name, "has an empty or invalid name")
    if name.startswith("/") or name.startswith("\\") or (len(name) > 1 and name[1] == ":"):
        _refuse(name, "has an absolute path")
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        _refuse(name, "has a '..' component")
    if not parts:
        return "."
    return "/".join(parts)


def _link_stays_inside(member_name, target, hard):
    """True when a link's target resolves inside the bundle."""
    if not target or target.startswith("/"):
        return False
    base = "" if hard else posixpath.dirname(member_name)      # hard links are relative to the root
    resolved = posixpath.normpath(posixpath.join(base, target))
    return not (resolved == ".." or resolved.startswith("../") or resolved.startswith("/"))


def check_member(member, limit=MAX_MEMBER_BYTES):
    """Return the normalised name of a safe member; raise BundleError otherwise."""
    name = normalize_name(member.name)
    for kind, what in _KIND:
        if member.type == kind:
            _refuse(member.name, "is %s" % what)
    if member.issym() or member.islnk():
        if not _link_stays_inside(name, member.linkname, hard=member.islnk()):
            _refuse(member.name, "is a %s link to %r, which leaves the bundle"
                    % ("hard" if member.islnk() else "symbolic", member.linkname))
    elif not (member.isfile() or member.isdir()):
        _refuse(member.name, "has tar type %r, which a bundle never holds" % (member.type,))
    if member.isfile() and member.size > limit:
        _refuse(member.name, "is %d bytes, over the %d MiB limit" % (member.size, limit >> 20))
    return name


class Budget(object):
    """Counts members and bytes across one archive; refuses archives that are too big in all."""

    def __init__(self, max_members=MAX_MEMBERS, max_total=MAX_TOTAL_BYTES):
        self.max_members, self.max_total = max_members, max_total
        self.members = 0
        self.total = 0

    def add(self, member):
        self.members += 1
        self.total += max(0, member.size) if member.isfile() else 0
        if self.members > self.max_members:
            raise BundleError("bundle has more than %d members" % self.max_members,
                              hint="refusing to unpack it; a bundle holds a handful of files")
        if self.total > self.max_total:
            raise BundleError("bundle unpacks to more than %d MiB" % (self.max_total >> 20),
                              hint="refusing to unpack it")
