"""Linux initramfs archives ("newc" cpio) without the cpio tool.

Every entry is owned by root (uid/gid 0) whoever runs the build, which is
what an initramfs needs. Standard library only.

    python3 cpio.py DIR > archive.cpio      # a directory tree
    Archive().add_file(...)/add_dir/...      # an archive built in memory
"""

import io
import os
import stat
import sys

_TRAILER = 'TRAILER!!!'


def _pad4(n):
    return (4 - n % 4) % 4


class Archive:
    """An in-memory newc archive; entries appear in the order they are added."""

    def __init__(self):
        self._out = io.BytesIO()
        self._ino = 1
        self._dirs = set()
        self._closed = False

    def _entry(self, name, mode, data=b'', mtime=0):
        name = name.lstrip('/') or '.'
        nameb = name.encode() + b'\0'
        hdr = '070701' + ''.join('%08X' % v for v in (
            self._ino, mode, 0, 0, 1, mtime, len(data), 0, 0, 0, 0, len(nameb), 0))
        self._ino += 1
        w = self._out.write
        w(hdr.encode())
        w(nameb)
        w(b'\0' * _pad4(110 + len(nameb)))
        w(data)
        w(b'\0' * _pad4(len(data)))

    def add_dir(self, name, perm=0o755):
        name = name.strip('/')
        if not name or name in self._dirs:
            return
        self._parents(name)
        self._dirs.add(name)
        self._entry(name, stat.S_IFDIR | perm)

    def _parents(self, name):
        parts = name.strip('/').split('/')[:-1]
        for i in range(1, len(parts) + 1):
            self.add_dir('/'.join(parts[:i]))

    def add_file(self, name, data, perm=0o644):
        if isinstance(data, str):
            data = data.encode()
        self._parents(name)
        self._entry(name, stat.S_IFREG | perm, data)

    def add_symlink(self, name, target):
        self._parents(name)
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def add_tree(self, top, prefix=''):
        """Adds the tree under `top` (directories, files, symlinks)."""
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames.sort()
            rel = os.path.relpath(dirpath, top)
            rel = '' if rel == '.' else rel
            base = '/'.join(x for x in (prefix.strip('/'), rel) if x)
            if base:
                self.add_dir(base, os.lstat(dirpath).st_mode & 0o7777)
            for d in dirnames:
                p = os.path.join(dirpath, d)
                if os.path.islink(p):
                    self.add_symlink(base + '/' + d if base else d, os.readlink(p))
            for f in sorted(filenames):
                p = os.path.join(dirpath, f)
                name = base + '/' + f if base else f
                st = os.lstat(p)
                if stat.S_ISLNK(st.st_mode):
                    self.add_symlink(name, os.readlink(p))
                elif stat.S_ISREG(st.st_mode):
                    with open(p, 'rb') as fh:
                        self.add_file(name, fh.read(), st.st_mode & 0o7777)

    def getvalue(self):
        if not self._closed:
            self._entry(_TRAILER, 0)
            self._closed = True
        return self._out.getvalue()


def main(argv):
    if len(argv) != 2 or not os.path.isdir(argv[1]):
        sys.stderr.write('usage: cpio.py DIR > archive.cpio\n')
        return 2
    a = Archive()
    a.add_tree(argv[1])
    sys.stdout.buffer.write(a.getvalue())
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
