"""Manual mode with a netvm that cannot be a Qubes netvm (a BSD router,
specs qubes-protocols.md §7.2, §7.5-7.6): the firewall has no uplink
device and is told its address and gateway on the command line; the
"bsd" qube is attached as one of its clients with the gateway's address
and forwards between its vif and a veth into the sys-net namespace.

    work ns --vif--> firewall 10.137.0.6 --vif--> bsd ns 10.137.0.50
                                                  | ip_forward, veth 10.200.0.2
                                                  v
                                                  sys-net ns 10.200.0.1 (web, dns)

Traffic of the other clients must leave NATed through the bsd qube and
its answers come back; the bsd qube's own traffic is a client's."""

import os
import time
import subprocess

import pytest

from qubessim import networld, qrexec
from qubessim.networld import FW_IP, WEB_IP

BSD_IP = '10.137.0.50'
BSD_WAN = '10.200.0.2'
NET_WAN = '10.200.0.1'


class ManualWorld(networld.NetWorld):
    """NetWorld without the firewall's uplink device (no --uplink)."""

    def start_firewall(self):
        self._fw_log = open(self.log_path, 'a')
        self.fw_proc = subprocess.Popen(
            [self.binary, '--domid=%d' % self.fw.domid, '--vchan-dir=' + self.dir,
             '--xenstore=' + os.path.join(self.dir, 'xenstored.sock'),
             '--cmdline=' + self.cmdline],
            stdout=self._fw_log, stderr=subprocess.STDOUT)
        self.qdb.wait_synced(count=1, timeout=15)
        self.qrexec = qrexec.QrexecDaemon(self.dir, self.fw.domid)
        self.qrexec.connect(timeout=15)


def _make_bsd_router(world, bsd):
    ns = world.client_ns(bsd)
    net = world.ns['sys-net']
    ns.run('sysctl', '-qw', 'net.ipv4.ip_forward=1')
    for conf in ('all', 'default', 'eth0'):
        ns.run('sysctl', '-qw', 'net.ipv4.conf.%s.rp_filter=0' % conf)
    net.run('ip', 'link', 'add', 'bsdwan', 'type', 'veth', 'peer', 'name', 'wan0')
    net.run('ip', 'link', 'set', 'wan0', 'netns', ns.name)
    net.run('ip', 'addr', 'add', NET_WAN + '/30', 'dev', 'bsdwan')
    net.run('ip', 'link', 'set', 'bsdwan', 'up')
    # The firewall's (NATed) address lives behind the bsd qube.
    net.run('ip', 'route', 'add', FW_IP + '/32', 'via', BSD_WAN)
    ns.run('ip', 'addr', 'add', BSD_WAN + '/30', 'dev', 'wan0')
    ns.run('ip', 'link', 'set', 'wan0', 'up')
    ns.run('ip', 'route', 'replace', 'default', 'via', NET_WAN, 'dev', 'wan0')


@pytest.fixture(scope='module')
def w():
    work = networld.client_vm('work', 20)
    blocked = networld.client_vm('blocked', 21, rules=['action=accept proto=icmp'])
    bsd = networld.client_vm('bsd', 40)
    bsd.ip = BSD_IP
    with ManualWorld([bsd, work, blocked], ipv6=False,
                     cmdline='--ipv4=%s --ipv4-gw=%s --log-level=debug' % (FW_IP, BSD_IP)) as world:
        world.work, world.bsd, world.blocked = work, bsd, blocked
        _make_bsd_router(world, bsd)
        yield world
        assert world.alive(), 'the firewall died:\n' + world.log()[-4000:]
        log = world.log()
        assert 'ERROR: AddressSanitizer' not in log and 'runtime error' not in log, log[-4000:]


def ping(ns, ip, count=1, wait=2):
    return ns.run('ping', '-n', '-c', str(count), '-W', str(wait), '-i', '0.2', ip, check=False,
                  timeout=30)


def curl(ns, url, timeout=4):
    return ns.run('curl', '-s', '-g', '-m', str(timeout), url, check=False, timeout=timeout + 10)


def test_client_reaches_the_web_through_the_bsd_qube(w):
    ns = w.client_ns(w.work)
    assert ping(ns, WEB_IP).returncode == 0, w.log()[-3000:]
    r = curl(ns, 'http://%s/' % WEB_IP)
    assert r.stdout == 'hello from sys-net\n', w.log()[-3000:]


def test_traffic_leaves_natted_to_the_firewall_address(w):
    # sys-net only knows the firewall's address (routed via the bsd qube):
    # a connection from a client working at all proves the NAT; the
    # server's view of the peer shows it directly.
    ns = w.client_ns(w.work)
    net = w.ns['sys-net']
    net.popen('/usr/bin/python3', '-c',
              'import socket\n'
              's=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n'
              's.bind(("%s",7777))\n'
              'while True:\n'
              '  d,a=s.recvfrom(100)\n'
              '  s.sendto(a[0].encode(),a)\n' % WEB_IP)

    time.sleep(0.5)
    r = ns.run('/usr/bin/python3', '-c',
               'import socket\n'
               's=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n'
               's.settimeout(3)\n'
               's.sendto(b"x",("%s",7777))\n'
               'print(s.recvfrom(100)[0].decode())\n' % WEB_IP, check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == FW_IP


def test_rules_of_other_clients_still_apply(w):
    ns = w.client_ns(w.blocked)
    assert ping(ns, WEB_IP).returncode == 0
    assert curl(ns, 'http://%s/' % WEB_IP, timeout=3).returncode != 0


def test_bsd_qube_is_a_client_for_its_own_traffic(w):
    ns = w.client_ns(w.bsd)
    assert ping(ns, FW_IP).returncode == 0
    # Anything else to the firewall is refused (a client's answer).
    assert curl(ns, 'http://%s/' % FW_IP, timeout=3).returncode != 0


def test_clients_cannot_reach_the_bsd_qube_directly(w):
    ns = w.client_ns(w.work)
    assert ping(ns, BSD_IP).returncode != 0
