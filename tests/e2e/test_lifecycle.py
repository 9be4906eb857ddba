"""End to end: netvm restart, netvm change and firewall restart — each on
its own world, since they tear parts of it down."""

import re

import pytest

from qubessim import networld
from qubessim.networld import WEB_IP


def ping_ok(ns, ip, tries=10):
    # The first packets after a change may go while ARP/ND settle.
    r = ns.run('ping', '-n', '-c', str(tries), '-W', '1', '-i', '0.3', ip, check=False, timeout=60)
    return ' 0 received' not in r.stdout and r.returncode in (0, 1) and 'bytes from' in r.stdout


@pytest.fixture
def w():
    c = networld.client_vm('work', 20)
    with networld.NetWorld([c], ipv6=False) as world:
        world.work = c
        yield world
        assert 'ERROR: AddressSanitizer' not in world.log(), world.log()[-4000:]


def test_netvm_restart_is_followed(w):
    ns = w.client_ns(w.work)
    assert ping_ok(ns, WEB_IP, 1)
    w.restart_sysnet()
    assert ping_ok(ns, WEB_IP)
    assert w.alive()
    assert 'uplink: lost' in w.log()


def test_netvm_change_is_followed(w):
    ns = w.client_ns(w.work)
    assert ping_ok(ns, WEB_IP, 1)
    w.change_netvm('10.137.0.7')
    assert ping_ok(ns, WEB_IP)
    assert 'netvm changed' in w.log()
    status = w.status()
    assert 'netvm 10.137.0.7' in status
    # The XenStore client saw the change through its watches and is healthy.
    xs = re.search(r'^xenstore: open, (\d+) requests in flight, (\d+) watches, '
                   r'(\d+) watch events, 0 dropped, 0 protocol errors$', status, re.M)
    assert xs, status
    assert int(xs.group(2)) > 0 and int(xs.group(3)) > 0, status


def test_firewall_restart_serves_clients_again(w):
    ns = w.client_ns(w.work)
    assert ping_ok(ns, WEB_IP, 1)
    w.restart_firewall()
    assert ping_ok(ns, WEB_IP)
    # its rules came back from QubesDB: handled was counted up again
    assert w.qdb.handled_count(w.work.ip) >= 2
