"""End to end: the control plane against the simulated dom0 — start-up
with QubesDB keys missing, qrexec protocol versions, QubesDB limits never
violated (one bad message would make dom0's daemon drop us)."""

import pytest

from qubessim import networld, qrexec
from qubessim.networld import WEB_IP


def test_start_with_network_keys_missing_then_arriving():
    c = networld.client_vm('work', 20)
    with networld.NetWorld([], ipv6=False, withhold_net_keys=True) as w:
        assert w.alive()
        networld.wait_until(lambda: 'waiting' in w.log(), 10, 'the firewall to wait for its keys')
        w.write_net_keys()
        ns = w.start_client(c)
        r = ns.run('ping', '-n', '-c', '3', '-W', '1', '-i', '0.3', WEB_IP, check=False, timeout=30)
        assert 'bytes from' in r.stdout, w.log()[-3000:]
        assert w.qdb.fatal is None and not w.qdb.warnings


@pytest.mark.parametrize('version', [2, 3])
def test_qrexec_versions(version):
    with networld.NetWorld([], ipv6=False) as w:
        w.qrexec.close()
        d = qrexec.QrexecDaemon(w.dir, w.fw.domid, version=version)
        try:
            assert d.connect(timeout=15) == version
            code, out, err = d.run_service('qubes.WaitForSession')
            assert code == 0
            code, out, err = d.run_service('qubes.FirewallStatus')
            assert code == 0 and b'qubes-c-firewall' in out
        finally:
            d.close()


def test_qubesdb_never_offended():
    c = networld.client_vm('work', 20, ipv6=True)
    with networld.NetWorld([c]) as w:
        for rules in (['action=accept'], ['action=drop dst4=192.0.2.0/24', 'action=accept'], []):
            w.set_rules(c, rules)
        w.stop_client(c)
        w.start_client(c)
        assert w.qdb.fatal is None, w.qdb.exit_reason
        assert not w.qdb.warnings
        assert w.qdb.read('/qubes-iptables-error') == ''
        assert int(w.qdb.read('/qubes-firewall-handled/%s' % c.ip)) >= 4
