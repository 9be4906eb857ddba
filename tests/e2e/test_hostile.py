"""End to end: a hostile client and a hostile netvm (scapy). After each
attack the firewall is alive, still forwarding for the other client, and
its memory has not grown."""

import pytest

from qubessim import networld
from qubessim.networld import WEB_IP

CLIENT_ATTACKS = {
    'malformed': r'''
from scapy.all import *
import random
random.seed(1)
fw = 'fe:ff:ff:ff:ff:ff'
src, dst = sys.argv[1], sys.argv[2]
frames = []
for i in range(300):
    p = Ether(dst=fw)/IP(src=src, dst=dst)/UDP(dport=9)/Raw(b'x' * (i % 50))
    b = bytearray(bytes(p))
    for _ in range(1 + i % 4):
        b[random.randrange(14, len(b))] = random.randrange(256)
    frames.append(bytes(b[:random.randrange(1, len(b) + 1)]))
frames += [bytes(fuzz(Ether(dst=fw)/IP(src=src, dst=dst)/TCP())) for _ in range(200)]
frames += [bytes(fuzz(Ether(dst=fw)/IPv6()/ICMPv6EchoRequest())) for _ in range(100)]
frames += [bytes(Ether(dst=fw)/IP(src=src, dst=dst, ihl=15)/b'short')]
frames += [bytes(Ether(dst=fw, type=0x8100)/Dot1Q(vlan=5)/Dot1Q(vlan=6)/IP(src=src, dst=dst))]
sendp([Raw(f) for f in frames], iface='eth0', verbose=False)
''',
    'fragments': r'''
from scapy.all import *
fw = 'fe:ff:ff:ff:ff:ff'
src, dst = sys.argv[1], sys.argv[2]
pkts = []
for i in range(400):   # a flood of never-completed datagrams
    pkts.append(Ether(dst=fw)/IP(src=src, dst=dst, id=i, flags='MF', frag=0, proto=17)/Raw(b'a' * 1200))
for i in range(100):   # overlapping fragments
    pkts.append(Ether(dst=fw)/IP(src=src, dst=dst, id=5000 + i, flags='MF', frag=0, proto=17)/Raw(b'b' * 64))
    pkts.append(Ether(dst=fw)/IP(src=src, dst=dst, id=5000 + i, flags=0, frag=4, proto=17)/Raw(b'c' * 64))
for i in range(100):   # tiny first fragments hiding the TCP header
    pkts.append(Ether(dst=fw)/IP(src=src, dst=dst, id=9000 + i, flags='MF', frag=0, proto=6)/Raw(b'd' * 8))
    pkts.append(Ether(dst=fw)/IP(src=src, dst=dst, id=9000 + i, flags=0, frag=1, proto=6)/Raw(b'e' * 40))
sendp(pkts, iface='eth0', verbose=False)
''',
    'multicast_and_broadcast': r'''
from scapy.all import *
src = sys.argv[1]
pkts = [Ether(dst='01:00:5e:7f:ff:fa')/IP(src=src, dst='239.255.255.250')/UDP(sport=5353, dport=5353)/Raw(b'M' * 607)
        for _ in range(300)]
pkts += [Ether(dst='ff:ff:ff:ff:ff:ff')/IP(src=src, dst='255.255.255.255')/UDP(dport=67)/Raw(b'B' * 300)
         for _ in range(100)]
pkts += [Ether(dst='33:33:00:00:00:01')/IPv6(dst='ff02::1')/UDP(dport=5353)/Raw(b'6' * 100) for _ in range(100)]
sendp(pkts, iface='eth0', verbose=False)
''',
    'arp_storm': r'''
from scapy.all import *
import random
src = sys.argv[1]
pkts = [Ether(dst='ff:ff:ff:ff:ff:ff', src=RandMAC())/ARP(op=random.choice([1, 2]), psrc=random.choice([src, '10.0.0.%d' % i]),
        pdst='10.%d.%d.%d' % (i % 250, i % 200, i % 100), hwsrc=RandMAC()) for i in range(2000)]
sendp(pkts, iface='eth0', verbose=False)
''',
    'spoofing': r'''
from scapy.all import *
fw = 'fe:ff:ff:ff:ff:ff'
dst = sys.argv[2]
pkts = [Ether(dst=fw)/IP(src='10.137.0.%d' % (i % 250), dst=dst)/UDP(dport=9) for i in range(500)]
pkts += [Ether(dst=fw)/IPv6(src='fd09:24ef:4179::a89:%x' % i, dst='2001:db8::1')/UDP(dport=9) for i in range(200)]
sendp(pkts, iface='eth0', verbose=False)
''',
    'nat_table_exhaustion': r'''
from scapy.all import *
fw = 'fe:ff:ff:ff:ff:ff'
src, dst = sys.argv[1], sys.argv[2]
sendp([Ether(dst=fw)/IP(src=src, dst=dst)/UDP(sport=1024 + i, dport=7) for i in range(3000)],
      iface='eth0', verbose=False)
''',
}

NETVM_ATTACKS = {
    'internal_sources': r'''
from scapy.all import *
iface, fw_mac = sys.argv[1], sys.argv[2]
pkts = [Ether(dst=fw_mac)/IP(src=s, dst='10.137.0.6')/UDP(sport=53, dport=40000 + i)
        for i, s in enumerate(['10.137.0.20', '10.137.0.21', '10.137.0.6'] * 100)]
sendp(pkts, iface=iface, verbose=False)
''',
    'unsolicited_dns_and_floods': r'''
from scapy.all import *
iface, fw_mac = sys.argv[1], sys.argv[2]
pkts = [Ether(dst=fw_mac)/IP(src='10.139.1.1', dst='10.137.0.6')/UDP(sport=53, dport=1024 + i)/
        DNS(id=i, qr=1, qd=DNSQR(qname='web.example.test'), an=DNSRR(rrname='web.example.test', rdata='6.6.6.6'))
        for i in range(1000)]
pkts += [Ether(dst=fw_mac)/IP(src='192.0.2.99', dst='10.137.0.6')/TCP(sport=80, dport=1024 + i, flags='SA')
         for i in range(1000)]
pkts += [Ether(dst=fw_mac)/IP(src='192.0.2.99', dst='10.137.0.6')/ICMP(type=3, code=3)/
         IP(src='10.137.0.6', dst='192.0.2.99')/UDP(sport=1024 + i, dport=53) for i in range(300)]
sendp(pkts, iface=iface, verbose=False)
''',
    'malformed_from_netvm': r'''
from scapy.all import *
iface, fw_mac = sys.argv[1], sys.argv[2]
frames = [bytes(fuzz(Ether(dst=fw_mac)/IP(dst='10.137.0.6')/UDP())) for _ in range(300)]
frames += [bytes(fuzz(Ether(dst=fw_mac)/IPv6()/ICMPv6ND_NS())) for _ in range(200)]
frames += [bytes(Ether(dst=fw_mac)/IP(src='192.0.2.1', dst='10.137.0.6', flags='MF', id=i)/Raw(b'z' * 1000))
           for i in range(300)]
sendp([Raw(f) for f in frames], iface=iface, verbose=False)
''',
}


@pytest.fixture(scope='module')
def w():
    evil = networld.client_vm('evil', 20, ipv6=True)
    good = networld.client_vm('good', 21)
    with networld.NetWorld([evil, good], cmdline='--nat-table-size=256') as world:
        world.evil, world.good = evil, good
        # settle, then take the reference memory figure
        good_ns = world.client_ns(good)
        good_ns.run('ping', '-n', '-c', '3', '-i', '0.2', WEB_IP, check=False)
        world.rss0 = world.fw_rss_kib()
        yield world
        log = world.log()
        assert 'ERROR: AddressSanitizer' not in log and 'runtime error' not in log, log[-4000:]


def still_serving(w):
    assert w.alive(), w.log()[-4000:]
    r = w.client_ns(w.good).run('curl', '-s', '-m', '5', 'http://%s/' % WEB_IP, check=False,
                                timeout=20)
    assert r.stdout == 'hello from sys-net\n'
    assert w.fw_rss_kib() <= w.rss0 + 2048, (w.rss0, w.fw_rss_kib())


@pytest.mark.parametrize('attack', sorted(CLIENT_ATTACKS))
def test_hostile_client(w, attack):
    w.client_ns(w.evil).run('/usr/bin/python3', '-c', CLIENT_ATTACKS[attack], w.evil.ip, WEB_IP,
                             timeout=240)
    still_serving(w)


@pytest.mark.parametrize('attack', sorted(NETVM_ATTACKS))
def test_hostile_netvm(w, attack):
    w.ns['sys-net'].run('/usr/bin/python3', '-c', NETVM_ATTACKS[attack], w.uplink,
                        networld.FW_UPLINK_MAC, timeout=240)
    still_serving(w)


def test_internal_sources_from_netvm_were_refused(w):
    import re
    uplink = re.search(r'^uplink: .*$', w.status(), re.M).group(0)
    spoofed = re.search(r'spoofed-source (\d+)', uplink)
    assert spoofed and int(spoofed.group(1)) >= 300, uplink
