"""A Qubes world described as data, written the way dom0 writes it.

* addressing (qubes-protocols.md §5.1): vm_ipv4 / vm_ipv6 from the qid;
* QubesDB keys of a firewall qube in qubesd's write order (§5.2,
  ADMIN qubesvm.py create_qdb_entries, then the domain-qdb-create handlers),
  including the rules of every connected client (§6.1);
* XenStore: the firewall's own domain dir, and client vifs as libxl writes
  them (§5.3, xen-platform.md §8.2): attach = frontend + backend dirs in one
  transaction; detach = online=0 + state=5 in one transaction, wait for the
  backend to write state 6 and remove its dir, then remove the frontend dir.

Everything here returns plain lists of (key, value) pairs so that the host
runner, the unit tests and a reader can all see exactly what dom0 provides.
"""

import base64
import hashlib
from dataclasses import dataclass, field

DNS = ('10.139.1.1', '10.139.1.2')
NETMASK = '255.255.255.255'
DEFAULT_MAC = '00:16:3e:5e:6c:00'
BACKEND_MAC = 'fe:ff:ff:ff:ff:ff'
VIF_SCRIPT = '/etc/xen/scripts/vif-route-qubes'

XENBUS_INITIALISING = 1
XENBUS_INITWAIT = 2
XENBUS_INITIALISED = 3
XENBUS_CONNECTED = 4
XENBUS_CLOSING = 5
XENBUS_CLOSED = 6


def vm_ipv4(qid, disposable=False):
    """10.137.X.Y (10.138 for disposables, keyed by dispid) from the qid (§5.1)."""
    net = 138 if disposable else 137
    if qid < 255:
        return '10.%d.%d.%d' % (net, qid >> 8, qid & 0xff)
    n = qid - 1
    return '10.%d.%d.%d' % (net, n // 254, n % 254 + 1)


def vm_ipv6(qid, disposable=False):
    """fd09:24ef:4179::a89:<qid hex> (a8a for disposables) (§5.1)."""
    return 'fd09:24ef:4179::%s:%x' % ('a8a' if disposable else 'a89', qid)


@dataclass
class VM:
    """One qube. ip/ip6 default from the qid; ipv6 only if `ipv6` is set."""
    name: str
    qid: int
    domid: int
    klass: str = 'AppVM'
    vm_type: str = 'AppVM'          # R3 compat /qubes-vm-type
    disposable: bool = False
    ipv6: bool = False
    mac: str = DEFAULT_MAC
    default_user: str = 'user'
    template: str = 'debian-12'
    updateable: bool = False
    provides_network: bool = False
    ip: str = None
    ip6: str = None
    rules: list = field(default_factory=lambda: ['action=accept'])   # QubesDB rule strings
    policy: str = 'drop'

    def __post_init__(self):
        if self.ip is None:
            self.ip = vm_ipv4(self.qid, self.disposable)
        if self.ip6 is None and self.ipv6:
            self.ip6 = vm_ipv6(self.qid, self.disposable)

    @property
    def home(self):
        return '/local/domain/%d' % self.domid


def firewall_vm(name='sys-firewall', qid=3, domid=3, **kw):
    kw.setdefault('klass', 'StandaloneVM')
    kw.setdefault('vm_type', 'ProxyVM')
    kw.setdefault('provides_network', True)
    kw.setdefault('template', '')
    return VM(name=name, qid=qid, domid=domid, **kw)


def netvm(name='sys-net', qid=2, domid=2, **kw):
    kw.setdefault('vm_type', 'NetVM')
    kw.setdefault('provides_network', True)
    return VM(name=name, qid=qid, domid=domid, **kw)


def _random_seed(vm):
    # deterministic stand-in for base64(urandom(64)) so runs are reproducible
    return base64.b64encode(hashlib.sha512(vm.name.encode()).digest()).decode()


def rule_entries(ip, policy, rules):
    """The final QubesDB contents of one client subtree (§6.1); rules are
    strings or (number, string) pairs."""
    base = '/qubes-firewall/%s' % ip
    out = [(base + '/policy', policy)]
    for i, rule in enumerate(rules):
        number, text = rule if isinstance(rule, tuple) else (i, rule)
        out.append(('%s/%04d' % (base, number), text))
    out.append((base, ''))
    return out


def rules_for_family(rules, v6):
    """dom0's filtering (§6.1): an IPv4 subtree gets no dst6 rule, an IPv6
    subtree no dst4 rule; the others keep their index as number, leaving
    gaps (qubes/firewall.py qdb_entries)."""
    out = []
    for i, rule in enumerate(rules):
        number, text = rule if isinstance(rule, tuple) else (i, rule)
        opts = text.split()
        if any(o.startswith('dst6=' if not v6 else 'dst4=') for o in opts):
            continue
        out.append((number, text))
    return out


def firewall_qdb_entries(fw, upstream, clients=(), services=None, timezone='UTC'):
    """QubesDB keys of a firewall qube in qubesd's order (§5.2).

    fw: the firewall VM; upstream: its netvm; clients: running connected VMs
    (their rules are included, as dom0 writes them on domain-qdb-create)."""
    e = [
        ('/name', fw.name),
        ('/type', fw.klass),
        ('/default-user', fw.default_user),
        ('/qubes-vm-updateable', str(fw.updateable)),
        ('/qubes-vm-persistence', 'full' if fw.updateable else 'rw-only'),
        ('/qubes-debug-mode', '0'),
        ('/qubes-base-template', fw.template),
        ('/qubes-random-seed', _random_seed(fw)),
    ]
    if fw.provides_network:
        e += [
            ('/qubes-netvm-network', fw.ip),
            ('/qubes-netvm-gateway', fw.ip),
            ('/qubes-netvm-netmask', NETMASK),
            ('/qubes-netvm-primary-dns', DNS[0]),
            ('/qubes-netvm-secondary-dns', DNS[1]),
        ]
        if fw.ip6:
            e.append(('/qubes-netvm-gateway6', fw.ip6))
    if upstream is not None:
        e += [
            ('/qubes-mac', fw.mac),
            ('/qubes-ip', fw.ip),
            ('/qubes-netmask', NETMASK),
            ('/qubes-gateway', upstream.ip),
            ('/qubes-primary-dns', DNS[0]),
            ('/qubes-secondary-dns', DNS[1]),
        ]
        if fw.ip6 and upstream.ip6:
            e += [('/qubes-ip6', fw.ip6), ('/qubes-gateway6', upstream.ip6)]
    if timezone:
        e.append(('/qubes-timezone', timezone))
    for svc, on in sorted((services or {}).items()):
        e.append(('/qubes-service/%s' % svc, '1' if on else '0'))
    e += [
        ('/qubes-block-devices', ''),
        ('/qubes-usb-devices', ''),
        # domain-qdb-create handlers: R3 compat, gui, net
        ('/qubes-vm-type', fw.vm_type),
        ('/qubes-iptables-error', ''),
        ('/qubes-gui-enabled', 'False'),
        ('/connected-ips', ' '.join(c.ip for c in clients)),
        ('/connected-ips6', ' '.join(c.ip6 for c in clients if c.ip6)),
    ]
    for c in clients:
        e += [('/mapped-ip/%s/visible-ip' % c.ip, c.ip),
              ('/mapped-ip/%s/visible-gateway' % c.ip, fw.ip)]
    for c in clients:
        e += rule_entries(c.ip, c.policy, rules_for_family(c.rules, False))
        if c.ip6:
            e += rule_entries(c.ip6, c.policy, rules_for_family(c.rules, True))
    return e


def set_client_rules(qdb, client, rules=None, policy=None):
    """dom0's rule update for one client (both address families) through a
    QubesDBDaemon; updates client.rules/policy when given."""
    if rules is not None:
        client.rules = list(rules)
    if policy is not None:
        client.policy = policy
    qdb.set_rules(client.ip, client.policy, rules_for_family(client.rules, False))
    if client.ip6:
        qdb.set_rules(client.ip6, client.policy, rules_for_family(client.rules, True))


# ---- XenStore ---------------------------------------------------------------

def domain_entries(vm):
    """The keys of a domain's own XenStore dir the firewall reads (§5.3)."""
    return [
        (vm.home, ''),
        (vm.home + '/domid', str(vm.domid)),
        (vm.home + '/name', vm.name),
        (vm.home + '/control/shutdown', ''),
        (vm.home + '/data', ''),
    ]


def xenstore_base_entries(fw, others=()):
    """/local/domain/0 + the firewall's and other domains' own dirs."""
    e = [('/local', ''), ('/local/domain', ''), ('/local/domain/0', ''),
         ('/local/domain/0/domid', '0'), ('/local/domain/0/name', 'dom0')]
    e += domain_entries(fw)
    for vm in others:
        e += domain_entries(vm)
    return e


def vif_backend_path(backend, frontend_vm, devid=0):
    return '%s/backend/vif/%d/%d' % (backend.home, frontend_vm.domid, devid)


def vif_frontend_path(frontend_vm, devid=0):
    return '%s/device/vif/%d' % (frontend_vm.home, devid)


def vif_entries(backend, client, devid=0, mtu=None):
    """Frontend and backend keys libxl writes for a vif (§5.3; xen-platform §8.2)."""
    b = vif_backend_path(backend, client, devid)
    f = vif_frontend_path(client, devid)
    ip = client.ip if not client.ip6 else '%s %s' % (client.ip, client.ip6)
    front = [
        (f + '/backend', b),
        (f + '/backend-id', str(backend.domid)),
        (f + '/state', str(XENBUS_INITIALISING)),
        (f + '/handle', str(devid)),
        (f + '/mac', client.mac),
        (f + '/trusted', '1'),
    ]
    back = [
        (b + '/frontend', f),
        (b + '/frontend-id', str(client.domid)),
        (b + '/online', '1'),
        (b + '/state', str(XENBUS_INITIALISING)),
        (b + '/script', VIF_SCRIPT),
        (b + '/mac', client.mac),
        (b + '/ip', ip),
        (b + '/handle', str(devid)),
        (b + '/type', 'vif'),
        (b + '/hotplug-status', ''),
    ]
    if mtu is not None:
        front.append((f + '/mtu', str(mtu)))
        back.append((b + '/mtu', str(mtu)))
    return front + back


def attach_vif(xs, backend, client, devid=0, mtu=None, wait_initwait=None):
    """libxl device add: write both dirs in one transaction. With
    wait_initwait=<seconds>, wait (like libxl, 10 s) for backend state 2."""
    xs.write_many(vif_entries(backend, client, devid, mtu))
    if wait_initwait is not None:
        xs.wait_for(vif_backend_path(backend, client, devid) + '/state',
                    lambda v: v == str(XENBUS_INITWAIT) or v == str(XENBUS_CONNECTED),
                    wait_initwait)


def frontend_connect(xs, client, devid=0, tx_ring_ref=8, rx_ring_ref=9, event_channel=10,
                     features=None):
    """What a Linux netfront writes when it connects (one transaction, then
    state 4)."""
    f = vif_frontend_path(client, devid)
    keys = {'tx-ring-ref': tx_ring_ref, 'rx-ring-ref': rx_ring_ref,
            'event-channel': event_channel, 'request-rx-copy': 1, 'feature-rx-notify': 1,
            'feature-sg': 1, 'feature-gso-tcpv4': 0}
    keys.update(features or {})
    xs.write_many([('%s/%s' % (f, k), str(v)) for k, v in keys.items()])
    xs.write(f + '/state', str(XENBUS_CONNECTED))


def set_frontend_state(xs, client, state, devid=0):
    xs.write(vif_frontend_path(client, devid) + '/state', str(state))


def detach_vif(xs, backend, client, devid=0, timeout=10.0):
    """libxl device remove for a driver-domain backend (§5.3): online=0 and
    state=5 in one transaction, wait for backend state 6, wait for the backend
    dir to be removed by the backend, then remove the frontend dir.
    Raises TimeoutError like libxl would fail the detach."""
    b = vif_backend_path(backend, client, devid)
    items = [(b + '/online', '0')]
    if xs.read(b + '/state') != str(XENBUS_CLOSED):
        items.append((b + '/state', str(XENBUS_CLOSING)))
    xs.write_many(items)
    xs.wait_until(lambda: not xs.exists(b) or xs.read(b + '/state') == str(XENBUS_CLOSED),
                  timeout, 'backend %s state 6' % b)
    xs.wait_for_absent(b, timeout)
    xs.rm(vif_frontend_path(client, devid))


class World:
    """A firewall, its netvm and clients, plus the dom0 daemons feeding it.

    The daemons are passed in (already constructed) so callers control socket
    paths and lifetimes; World only writes what dom0 writes."""

    def __init__(self, fw, upstream, clients=(), services=None):
        self.fw = fw
        self.upstream = upstream
        self.clients = list(clients)
        self.services = services or {}

    def qdb_entries(self, connected=None):
        connected = self.clients if connected is None else connected
        return firewall_qdb_entries(self.fw, self.upstream, connected, self.services)

    def xenstore_entries(self):
        return xenstore_base_entries(self.fw, [self.upstream] + self.clients)

    def populate(self, qdb=None, xs=None, connected=None):
        if qdb is not None:
            for k, v in self.qdb_entries(connected):
                qdb.write(k, v)
        if xs is not None:
            xs.write_many(self.xenstore_entries())

    def client(self, name):
        for c in self.clients:
            if c.name == name:
                return c
        raise KeyError(name)

    def start_client(self, qdb, xs, client, devid=0, wait_initwait=None):
        """What dom0 does when a connected client starts: rules first
        (domain-pre-spawn), then the vif, then rules again (domain-start),
        and /connected-ips."""
        if client not in self.clients:
            self.clients.append(client)
        set_client_rules(qdb, client)
        attach_vif(xs, self.fw, client, devid, wait_initwait=wait_initwait)
        set_client_rules(qdb, client)
        qdb.write('/connected-ips', ' '.join(c.ip for c in self.clients))
        qdb.write('/connected-ips6', ' '.join(c.ip6 for c in self.clients if c.ip6))

    def stop_client(self, qdb, xs, client, devid=0, timeout=10.0):
        detach_vif(xs, self.fw, client, devid, timeout)
        if client in self.clients:
            self.clients.remove(client)
        qdb.write('/connected-ips', ' '.join(c.ip for c in self.clients))
        qdb.write('/connected-ips6', ' '.join(c.ip6 for c in self.clients if c.ip6))
