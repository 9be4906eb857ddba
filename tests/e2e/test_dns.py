"""End to end: dsthost rules (issue 7) with dnsmasq answering, changing its
answers, going silent, and giving the client other addresses than the
firewall got."""

import pytest

from qubessim import networld
from qubessim.networld import OTHER_IP, WEB_IP

RULES = ['action=accept dsthost=web.example.test proto=tcp dstports=80-80',
         'action=accept specialtarget=dns']


def curl_ok(ns, ip):
    r = ns.run('curl', '-s', '-m', '3', 'http://%s/' % ip, check=False, timeout=15)
    return r.stdout == 'hello from sys-net\n'


def wait_curl(ns, ip, want, timeout=20):
    networld.wait_until(lambda: curl_ok(ns, ip) == want, timeout,
                        '%s to be %s' % (ip, 'reachable' if want else 'blocked'))


@pytest.fixture
def w():
    c = networld.client_vm('work', 20, rules=RULES)
    with networld.NetWorld([c], ipv6=False) as world:
        world.work = c
        yield world
        log = world.log()
        assert 'ERROR: AddressSanitizer' not in log and 'runtime error' not in log, log[-4000:]


def test_dsthost_rule_allows_only_that_host(w):
    ns = w.client_ns(w.work)
    wait_curl(ns, WEB_IP, True)
    assert not curl_ok(ns, OTHER_IP)
    value = w.qdb.wait_for_key('/dns/%s/web.example.test' % w.work.ip, timeout=10)
    assert WEB_IP + '/32' in value
    assert 'answers' in w.status()


def test_answer_change_is_followed(w):
    ns = w.client_ns(w.work)
    wait_curl(ns, WEB_IP, True)
    for server in ('10.139.1.1', '10.139.1.2'):
        w.set_dns_answer(server, 'web.example.test', [OTHER_IP])
    # The firewall asks again before the (clamped, 30 s) TTL runs out; the
    # old address stays usable for a grace period after that.
    wait_curl(ns, OTHER_IP, True, timeout=45)


def test_client_learns_addresses_it_was_given(w):
    """Qubes #8809: the client's resolver hands out another address (a CDN
    rotating) than the firewall saw: the client's own answer counts."""
    ns = w.client_ns(w.work)
    wait_curl(ns, WEB_IP, True)
    assert not curl_ok(ns, OTHER_IP)
    w.set_dns_answer('10.139.1.2', 'web.example.test', [OTHER_IP])
    r = ns.run('dig', '+short', '+time=2', '@10.139.1.2', 'web.example.test', check=False)
    assert r.stdout.split() == [OTHER_IP]
    wait_curl(ns, OTHER_IP, True, timeout=5)


def test_dns_down_at_start_then_back():
    c = networld.client_vm('work', 20, rules=RULES)
    with networld.NetWorld([], ipv6=False) as w:
        for server in ('10.139.1.1', '10.139.1.2'):
            w.stop_dns(server)
        ns = w.start_client(c)
        assert not curl_ok(ns, WEB_IP)  # unresolved accept rule matches nothing
        for server in ('10.139.1.1', '10.139.1.2'):
            w.start_dns(server)
        wait_curl(ns, WEB_IP, True, timeout=90)
        assert w.alive()
