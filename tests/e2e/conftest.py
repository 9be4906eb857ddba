"""pytest setup for the end-to-end tier: the host runner between network
namespaces (tests/sim/qubessim/networld.py). Needs root, iproute2 and the
tools of scripts/install-deps; skips (with the reason) where they are
missing instead of failing for the wrong reason."""

import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'sim'))

from qubessim import networld  # noqa: E402

BINARY = os.path.join(networld.ROOT, 'build', 'qubes-firewall-host-asan')


def _why_not():
    if os.geteuid() != 0:
        return 'needs root (network namespaces)'
    for tool in ('ip', 'dnsmasq', 'iperf3', 'curl', 'dig', 'traceroute', 'ping'):
        if not shutil.which(tool):
            return 'missing %s (run make deps)' % tool
    if not os.path.exists(BINARY):
        return 'build the host runner first (make host)'
    r = subprocess.run(['ip', 'netns', 'add', 'qcf-probe'], capture_output=True)
    if r.returncode != 0:
        return 'cannot create network namespaces: ' + r.stderr.decode().strip()
    subprocess.run(['ip', 'netns', 'delete', 'qcf-probe'], capture_output=True)
    return None


REASON = _why_not()


def pytest_collection_modifyitems(config, items):
    if REASON:
        for item in items:
            item.add_marker(pytest.mark.skip(reason=REASON))
