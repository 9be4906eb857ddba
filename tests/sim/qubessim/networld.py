"""A whole simulated Qubes network on one Linux machine: the host runner
(build/qubes-firewall-host*) between network namespaces standing in for
sys-net and for client qubes, driven by the simulated dom0 daemons exactly
as dom0 drives the unikernel.

Topology (addresses as Qubes assigns them, specs §5):

    client ns  <-- TAP vif<domid>.0 -->  firewall process  <-- TAP uplink -->  sys-net ns
    10.137.0.X                           10.137.0.6                           10.137.0.5
                                                                               192.0.2.1, 198.51.100.1
                                                                               10.139.1.1/2 (dnsmasq)
                                                                               2001:db8::1 (IPv6)

The firewall creates every TAP itself (as netback creates vifs); the
harness moves each one into the namespace of the qube it belongs to and
configures it the way Qubes' Linux qubes configure their eth0: a /32
address, a point-to-point route to the gateway and a permanent neighbour
entry gateway -> fe:ff:ff:ff:ff:ff.

Every namespace, process and socket created here is removed by close(),
which also runs at interpreter exit and on SIGTERM/SIGINT from make run.
Traffic only ever goes to addresses inside these namespaces.
"""

import atexit
import os
import shutil
import signal
import subprocess
import tempfile
import time

from . import qrexec, qubesdb, world, xenstore

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
FW_IP = '10.137.0.6'
NETVM_IP = '10.137.0.5'
WEB_IP = '192.0.2.1'
OTHER_IP = '198.51.100.1'
WEB_IP6 = '2001:db8::1'
FW_IP6 = 'fd09:24ef:4179::a89:6'
NETVM_IP6 = 'fd09:24ef:4179::a89:5'
FW_UPLINK_MAC = '00:16:3e:5e:6c:06'


def sh(*cmd, check=True, timeout=30, **kw):
    """Runs a command (no shell) and returns CompletedProcess with text output."""
    return subprocess.run(list(cmd), check=check, timeout=timeout, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def wait_until(cond, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.02)
    raise TimeoutError('timed out waiting for ' + what)


class Netns:
    def __init__(self, name):
        self.name = name
        sh('ip', 'netns', 'add', name)
        self.run('ip', 'link', 'set', 'lo', 'up')
        self.procs = []

    def run(self, *cmd, check=True, timeout=30):
        return sh('ip', 'netns', 'exec', self.name, *cmd, check=check, timeout=timeout)

    def popen(self, *cmd, **kw):
        kw.setdefault('stdout', subprocess.DEVNULL)
        kw.setdefault('stderr', subprocess.DEVNULL)
        p = subprocess.Popen(['ip', 'netns', 'exec', self.name] + list(cmd), **kw)
        self.procs.append(p)
        return p

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=3)
        self.procs = []
        # Anything else still running in the namespace (daemonised tools).
        pids = sh('ip', 'netns', 'pids', self.name, check=False).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        sh('ip', 'netns', 'delete', self.name, check=False)


def link_exists(name, ns=None):
    cmd = ['ip', 'link', 'show', name]
    if ns:
        cmd = ['ip', 'netns', 'exec', ns] + cmd
    return subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0


class NetWorld:
    """Start with `with NetWorld(...) as w:`; see the module doc."""

    NET_KEYS = ('/qubes-ip', '/qubes-gateway', '/qubes-primary-dns', '/qubes-secondary-dns',
                '/qubes-ip6', '/qubes-gateway6')

    def __init__(self, clients=(), binary=None, cmdline='--log-level=debug', ipv6=True,
                 log_path=None, withhold_net_keys=False):
        self.tag = 'q%d' % (os.getpid() % 100000)
        self.binary = binary or os.path.join(ROOT, 'build', 'qubes-firewall-host-asan')
        self.cmdline = cmdline
        self.ipv6 = ipv6
        self.dir = tempfile.mkdtemp(prefix='qcf-')
        self.log_path = log_path or os.path.join(self.dir, 'firewall.log')
        self.fw = world.firewall_vm(name='sys-firewall', qid=6, domid=3, ip=FW_IP, ipv6=ipv6,
                                    ip6=FW_IP6 if ipv6 else None)
        self.netvm = world.netvm(name='sys-net', qid=5, domid=2, ip=NETVM_IP, ipv6=ipv6,
                                 ip6=NETVM_IP6 if ipv6 else None)
        self.clients = list(clients)
        self.world = world.World(self.fw, self.netvm, [])
        self.ns = {}
        self.fw_proc = None
        self.qdb = self.xs = self.qrexec = None
        self.uplink = 'up' + self.tag
        self.closed = False
        self._fw_log = None
        # Start with dom0's network keys missing (written later with
        # write_net_keys), as when the netvm is not set yet.
        self.withhold_net_keys = withhold_net_keys

    # ---- lifecycle ----------------------------------------------------------

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def start(self):
        atexit.register(self.close)
        self._start_sysnet()
        xs_entries = self.world.xenstore_entries()
        self.xs = xenstore.XenStoreDaemon(os.path.join(self.dir, 'xenstored.sock'),
                                          self.fw.domid, xs_entries)
        self.xs.start()
        entries = self.world.qdb_entries([])
        if self.withhold_net_keys:
            self.withheld = [(k, v) for k, v in entries if k in self.NET_KEYS]
            entries = [(k, v) for k, v in entries if k not in self.NET_KEYS]
        self.qdb = qubesdb.QubesDBDaemon(self.dir, self.fw.domid, entries)
        self.qdb.start()
        self.start_firewall()
        for c in self.clients:
            self.start_client(c)

    def start_firewall(self):
        self._fw_log = open(self.log_path, 'a')
        self.fw_proc = subprocess.Popen(
            [self.binary, '--domid=%d' % self.fw.domid, '--vchan-dir=' + self.dir,
             '--xenstore=' + os.path.join(self.dir, 'xenstored.sock'), '--uplink=' + self.uplink,
             '--uplink-mac=' + FW_UPLINK_MAC, '--cmdline=' + self.cmdline],
            stdout=self._fw_log, stderr=subprocess.STDOUT)
        if not self.withhold_net_keys:
            self._wait_and_plug_uplink()
        self.qdb.wait_synced(count=1, timeout=15)
        self.qrexec = qrexec.QrexecDaemon(self.dir, self.fw.domid)
        self.qrexec.connect(timeout=15)

    def _wait_and_plug_uplink(self):
        wait_until(lambda: link_exists(self.uplink) or self.fw_proc.poll() is not None, 15,
                   'the firewall to create its uplink TAP')
        if self.fw_proc.poll() is not None:
            raise RuntimeError('firewall exited: ' + self.log())
        self._plug_uplink()

    def kill_firewall(self):
        """SIGKILL, as a crash would; the daemons stay."""
        if self.qrexec:
            self.qrexec.close()
            self.qrexec = None
        if self.fw_proc and self.fw_proc.poll() is None:
            self.fw_proc.kill()
            self.fw_proc.wait(timeout=10)
        if self._fw_log:
            self._fw_log.close()
            self._fw_log = None

    def close(self):
        if self.closed:
            return
        self.closed = True
        if self.qrexec:
            try:
                self.qrexec.close()
            except Exception:
                pass
        if self.fw_proc and self.fw_proc.poll() is None:
            self.fw_proc.terminate()
            try:
                self.fw_proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.fw_proc.kill()
                self.fw_proc.wait(timeout=5)
        if self._fw_log:
            self._fw_log.close()
        for d in (self.qdb, self.xs):
            if d:
                try:
                    d.stop()
                except Exception:
                    pass
        for ns in list(self.ns.values()):
            ns.close()
        self.ns = {}
        for name in [self.uplink] + ['vif%d.0' % c.domid for c in self.clients]:
            if link_exists(name):
                sh('ip', 'link', 'delete', name, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)

    # ---- sys-net ---------------------------------------------------------------

    def _start_sysnet(self, name='sys-net', suffix='net'):
        net = self.ns[name] = Netns('%s-%s' % (self.tag, suffix))
        # The "internet" behind sys-net: local addresses on a veth pair (the
        # dummy driver is not available on every kernel).
        net.run('ip', 'link', 'add', 'inet0', 'type', 'veth', 'peer', 'name', 'inet1')
        net.run('ip', 'link', 'set', 'inet1', 'up')
        net.run('ip', 'link', 'set', 'inet0', 'up')
        for a in (WEB_IP + '/24', OTHER_IP + '/24', '10.139.1.1/32', '10.139.1.2/32'):
            net.run('ip', 'addr', 'add', a, 'dev', 'inet0')
        if self.ipv6:
            net.run('ip', '-6', 'addr', 'add', WEB_IP6 + '/64', 'dev', 'inet0', 'nodad')
        net.run('sysctl', '-qw', 'net.ipv4.ip_forward=1')
        # Two resolvers, one per virtual DNS address, each with its own hosts
        # file, so a test can make them answer differently or go silent.
        self.dns_hosts = {}
        self.dns_procs = {}
        for server in ('10.139.1.1', '10.139.1.2'):
            path = os.path.join(self.dir, 'hosts-%s' % server)
            if server not in self.dns_hosts:
                self.dns_hosts[server] = {'web.example.test': [WEB_IP] + ([WEB_IP6] if self.ipv6 else []),
                                          'other.example.test': [OTHER_IP]}
            self._write_hosts(server)
            self._start_dns(server, net)
        www = os.path.join(self.dir, 'www')
        os.makedirs(www, exist_ok=True)
        with open(os.path.join(www, 'index.html'), 'w') as f:
            f.write('hello from sys-net\n')
        for ip in (WEB_IP, OTHER_IP):
            net.popen('/usr/bin/python3', '-m', 'http.server', '--bind', ip, '--directory', www, '80')
        if self.ipv6:
            net.popen('/usr/bin/python3', '-m', 'http.server', '--bind', WEB_IP6, '--directory',
                      www, '80')
        net.popen('iperf3', '-s', '-B', WEB_IP)
        wait_until(lambda: ':80 ' in net.run('ss', '-ltnH').stdout, 10, 'the web servers')

    def _write_hosts(self, server):
        with open(os.path.join(self.dir, 'hosts-%s' % server), 'w') as f:
            for name, addrs in self.dns_hosts[server].items():
                for a in addrs:
                    f.write('%s %s\n' % (a, name))

    def _start_dns(self, server, net=None):
        net = net or self.ns['sys-net']
        self.dns_procs[server] = net.popen(
            'dnsmasq', '--keep-in-foreground', '--no-resolv', '--no-hosts',
            '--addn-hosts=' + os.path.join(self.dir, 'hosts-%s' % server),
            '--listen-address=' + server, '--bind-interfaces', '--port=53', '--pid-file=',
            '--user=root', '--log-facility=-', '--cache-size=0', '--local-ttl=1')
        wait_until(lambda: server + ':53' in net.run('ss', '-lunH').stdout, 10, 'dnsmasq on ' + server)

    def set_dns_answer(self, server, name, addrs):
        """What one resolver answers for name from now on."""
        self.dns_hosts[server][name] = list(addrs)
        self._write_hosts(server)
        self.dns_procs[server].send_signal(signal.SIGHUP)
        time.sleep(0.2)

    def stop_dns(self, server):
        p = self.dns_procs.pop(server)
        p.terminate()
        p.wait(timeout=5)

    def start_dns(self, server):
        self._start_dns(server)

    def _plug_uplink(self, name='sys-net', netvm_ip=NETVM_IP, from_ns=None):
        net = self.ns[name]
        if from_ns:
            from_ns.run('ip', 'link', 'set', self.uplink, 'netns', net.name)
        else:
            sh('ip', 'link', 'set', self.uplink, 'netns', net.name)
        net.run('ip', 'link', 'set', self.uplink, 'address', world.BACKEND_MAC, 'up')
        net.run('ip', 'addr', 'add', netvm_ip + '/32', 'dev', self.uplink)
        net.run('ip', 'route', 'add', FW_IP + '/32', 'dev', self.uplink)
        if self.ipv6:
            net.run('ip', '-6', 'addr', 'add', NETVM_IP6 + '/128', 'dev', self.uplink, 'nodad')
            net.run('ip', '-6', 'route', 'add', FW_IP6 + '/128', 'dev', self.uplink)

    def write_net_keys(self):
        """dom0 sets the firewall's netvm: the withheld network keys arrive."""
        for k, v in self.withheld:
            self.qdb.write(k, v)
        self.withhold_net_keys = False
        self._wait_and_plug_uplink()

    # ---- netvm and firewall lifecycle -----------------------------------------------

    def restart_sysnet(self):
        """The netvm dies (its namespace goes, taking the uplink vif with it)
        and comes back; the firewall must notice, recreate its uplink and
        carry on."""
        self.ns.pop('sys-net').close()
        wait_until(lambda: link_exists(self.uplink), 15, 'the firewall to recreate its uplink')
        self._start_sysnet()
        self._plug_uplink()

    def change_netvm(self, new_ip='10.137.0.7'):
        """qvm-prefs <fw> netvm <other>: a second netvm namespace, the uplink
        vif moved there, and dom0's new /qubes-gateway."""
        old = self.ns['sys-net']
        self._start_sysnet('sys-net2', 'net2')
        self._plug_uplink('sys-net2', new_ip, from_ns=old)
        old.close()
        self.ns['sys-net'] = self.ns.pop('sys-net2')
        self.qdb.write('/qubes-gateway', new_ip)

    def restart_firewall(self):
        """The firewall is killed and started again: every TAP died with it,
        so each is plugged again into its qube's namespace once recreated."""
        self.kill_firewall()
        syncs = self.qdb.syncs
        self._fw_log = open(self.log_path, 'a')
        self.fw_proc = subprocess.Popen(
            [self.binary, '--domid=%d' % self.fw.domid, '--vchan-dir=' + self.dir,
             '--xenstore=' + os.path.join(self.dir, 'xenstored.sock'), '--uplink=' + self.uplink,
             '--uplink-mac=' + FW_UPLINK_MAC, '--cmdline=' + self.cmdline],
            stdout=self._fw_log, stderr=subprocess.STDOUT)
        wait_until(lambda: link_exists(self.uplink) or self.fw_proc.poll() is not None, 15,
                   'the restarted firewall to create its uplink TAP')
        self._plug_uplink()
        self.qdb.wait_synced(count=syncs + 1, timeout=15)
        self.qrexec = qrexec.QrexecDaemon(self.dir, self.fw.domid)
        self.qrexec.connect(timeout=15)
        for vm in self.clients:
            self._plug_client(vm, self.ns[vm.name])

    # ---- clients ------------------------------------------------------------------

    def client_ns(self, vm):
        return self.ns[vm.name]

    def start_client(self, vm):
        """dom0's client start: rules, vif, rules again; then plug the TAP the
        firewall created into a fresh namespace for the client."""
        if vm not in self.clients:
            self.clients.append(vm)
        before4 = self.qdb.handled_count(vm.ip)
        self.world.start_client(self.qdb, self.xs, vm)
        ns = self.ns[vm.name] = Netns('%s-%s' % (self.tag, vm.name))
        self._plug_client(vm, ns)
        self.qdb.wait_handled(vm.ip, before4, timeout=15)
        return ns

    def _plug_client(self, vm, ns):
        tap = 'vif%d.0' % vm.domid
        wait_until(lambda: link_exists(tap), 15, 'TAP ' + tap)
        sh('ip', 'link', 'set', tap, 'netns', ns.name)
        ns.run('ip', 'link', 'set', tap, 'name', 'eth0')
        ns.run('ip', 'link', 'set', 'eth0', 'address', vm.mac, 'up')
        ns.run('ip', 'addr', 'add', vm.ip + '/32', 'dev', 'eth0')
        ns.run('ip', 'route', 'add', FW_IP + '/32', 'dev', 'eth0')
        ns.run('ip', 'route', 'add', 'default', 'via', FW_IP, 'dev', 'eth0', 'onlink')
        ns.run('ip', 'neigh', 'add', FW_IP, 'lladdr', world.BACKEND_MAC, 'dev', 'eth0',
               'nud', 'permanent')
        if vm.ip6:
            ns.run('ip', '-6', 'addr', 'add', vm.ip6 + '/128', 'dev', 'eth0', 'nodad')
            ns.run('ip', '-6', 'route', 'add', FW_IP6 + '/128', 'dev', 'eth0')
            ns.run('ip', '-6', 'route', 'add', 'default', 'via', FW_IP6, 'dev', 'eth0')
            ns.run('ip', '-6', 'neigh', 'add', FW_IP6, 'lladdr', world.BACKEND_MAC, 'dev', 'eth0',
                   'nud', 'permanent')

    def stop_client(self, vm, timeout=10.0):
        """dom0's client stop: libxl's detach (waits for the backend to close
        and remove its directory), then the namespace goes."""
        self.world.stop_client(self.qdb, self.xs, vm, timeout=timeout)
        if vm in self.clients:
            self.clients.remove(vm)
        ns = self.ns.pop(vm.name, None)
        if ns:
            ns.close()

    def set_rules(self, vm, rules, policy='drop'):
        """dom0's rule update; returns when the firewall has applied it."""
        before = self.qdb.handled_count(vm.ip)
        world.set_client_rules(self.qdb, vm, rules, policy)
        self.qdb.wait_handled(vm.ip, before, timeout=15)
        if vm.ip6:
            self.qdb.wait_handled(vm.ip6, 0, timeout=15)

    # ---- observation ------------------------------------------------------------

    def log(self):
        try:
            with open(self.log_path) as f:
                return f.read()
        except OSError:
            return ''

    def status(self):
        r = self.qrexec.run_service('qubes.FirewallStatus')
        return r.stdout.decode(errors='replace')

    def fw_rss_kib(self):
        with open('/proc/%d/status' % self.fw_proc.pid) as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])
        return 0

    def alive(self):
        return self.fw_proc is not None and self.fw_proc.poll() is None


def client_vm(name, qid, ipv6=False, rules=None, policy='drop'):
    """A client qube (domid = qid + 10)."""
    vm = world.VM(name=name, qid=qid, domid=qid + 10, ipv6=ipv6, policy=policy,
                  rules=list(rules) if rules is not None else ['action=accept'])
    return vm
