"""pytest setup for the sim tier: make `qubessim` importable and give each
test a socket directory (tmp_path, or a short /tmp dir when tmp_path is too
long for AF_UNIX's 107-byte limit)."""

import os
import shutil
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# longest name we create: vchan.<server>.<client>.<port>.sock or xenstored.sock
_LONGEST_NAME = len('/vchan.65535.65535.65535.sock')


@pytest.fixture
def sock_dir(tmp_path):
    if len(str(tmp_path)) + _LONGEST_NAME <= 107:
        yield str(tmp_path)
        return
    d = tempfile.mkdtemp(prefix='qsim-')
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)
