"""Tests of the simulated dom0 (tests/sim/qubessim) against tiny clients that
speak the wire formats directly, with byte vectors from the specs
(qubes-protocols.md §2.6, §3.3, §3.4; xen-platform.md §6.2)."""

import os
import socket
import struct
import threading
import time

import pytest

from qubessim import qrexec, qubesdb, vchan, world, xenstore
from qubessim.qubesdb import QubesDBDaemon
from qubessim.xenstore import XenStoreDaemon
from qubessim.qrexec import QrexecDaemon

VM = 5
T = 5.0   # generous per-wait timeout


# ----------------------------------------------------------------------------
# tiny wire clients

def recv_exact(sock, n, timeout=T):
    sock.settimeout(timeout)
    buf = b''
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError('EOF after %d bytes' % len(buf))
        buf += chunk
    return buf


def assert_eof(sock, timeout=T):
    sock.settimeout(timeout)
    try:
        data = sock.recv(4096)
    except ConnectionResetError:
        return
    assert data == b''


class QdbVM:
    """The VM side of the QubesDB vchan, raw bytes."""

    def __init__(self, sock_dir, domid=VM):
        self.sock = vchan.connect_unix(vchan.vchan_path(sock_dir, 0, domid, 111), T)
        self.sock.settimeout(T)

    def send(self, data):
        self.sock.sendall(data)

    def msg(self, msg_type, path=b'', data=b''):
        if isinstance(path, str):
            path = path.encode()
        if isinstance(data, str):
            data = data.encode()
        self.send(bytes([msg_type]) + path.ljust(64, b'\0') + b'\0\0\0'
                  + struct.pack('<I', len(data)) + data)

    def recv(self):
        hdr = recv_exact(self.sock, 72)
        data_len = struct.unpack('<I', hdr[68:72])[0]
        data = recv_exact(self.sock, data_len) if data_len else b''
        return hdr[0], hdr[1:65].split(b'\0')[0].decode(), data, hdr

    def multiread(self):
        self.send(bytes.fromhex('02') + b'\0' * 64 + b'\0\0\0' + b'\0\0\0\0')
        out = []
        while True:
            t, path, data, _ = self.recv()
            assert t == qubesdb.RESP_MULTIREAD
            if not path and not data:
                return out
            out.append((path, data))

    def close(self):
        vchan.close_quietly(self.sock)


@pytest.fixture
def qdb(sock_dir):
    d = QubesDBDaemon(sock_dir, VM)
    d.start()
    yield d
    d.stop()


# ----------------------------------------------------------------------------
# QubesDB

def test_qdb_spec_vectors(sock_dir, qdb):
    # §2.6: CMD_MULTIREAD is type 2 + 71 zero bytes
    assert qubesdb.pack(qubesdb.CMD_MULTIREAD) == bytes([2]) + bytes(71)
    qdb.write('/qubes-ip', '10.137.0.23')
    vm = QdbVM(sock_dir)
    vm.send(bytes([2]) + bytes(71))
    hdr = recv_exact(vm.sock, 72)
    # 0B | "/qubes-ip" NUL-padded to 64 | pad | 0B 00 00 00 | "10.137.0.23"
    assert hdr[0] == 0x0B
    assert hdr[1:65] == b'/qubes-ip'.ljust(64, b'\0')
    assert hdr[68:72] == bytes.fromhex('0B000000')
    assert recv_exact(vm.sock, 11) == bytes.fromhex('31302E3133372E302E3233')
    assert recv_exact(vm.sock, 72) == bytes([0x0B]) + bytes(71)     # terminator
    # RESP_OK acknowledging a write: 07 | path | pad | 00 00 00 00
    vm.msg(qubesdb.CMD_WRITE, '/qubes-firewall/10.137.0.5', '1')
    assert recv_exact(vm.sock, 72) == (bytes([7]) + b'/qubes-firewall/10.137.0.5'.ljust(64, b'\0')
                                       + bytes(3) + bytes(4))
    vm.close()


def test_qdb_multiread_dumps_reverse_sorted(sock_dir, qdb):
    keys = ['/b', '/a', '/qubes-ip', '/a/x', '/zz']
    for k in keys:
        qdb.write(k, 'v' + k)
    vm = QdbVM(sock_dir)
    got = vm.multiread()
    assert [p for p, _ in got] == sorted(keys, reverse=True)
    assert dict(got) == {k: ('v' + k).encode() for k in keys}
    qdb.wait_synced()
    assert qdb.synced and qdb.syncs == 1
    vm.close()


def test_qdb_forwards_dom0_writes_and_rms_after_sync(sock_dir, qdb):
    vm = QdbVM(sock_dir)
    qdb.write('/early', 'x')            # before the sync: delivered in the dump only
    assert vm.multiread() == [('/early', b'x')]
    qdb.wait_synced()
    qdb.write('/qubes-gateway', '10.137.0.1')
    t, path, data, _ = vm.recv()
    assert (t, path, data) == (qubesdb.CMD_WRITE, '/qubes-gateway', b'10.137.0.1')
    assert qdb.rm('/qubes-gateway') is True
    assert vm.recv()[:3] == (qubesdb.CMD_RM, '/qubes-gateway', b'')
    # rm of a missing key: nothing forwarded (next message is the write below)
    assert qdb.rm('/nothing') is False
    assert qdb.rm('/nothing/') is False
    qdb.write('/marker', '')
    assert vm.recv()[:3] == (qubesdb.CMD_WRITE, '/marker', b'')
    # the VM's acks are recorded
    vm.msg(qubesdb.RESP_OK, '/marker')
    vm.msg(qubesdb.RESP_ERROR, '/marker')
    deadline = time.monotonic() + T
    while len(qdb.vm_responses) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert qdb.vm_responses == [(qubesdb.RESP_OK, '/marker'), (qubesdb.RESP_ERROR, '/marker')]
    assert qdb.fatal is None
    vm.close()


def test_qdb_set_rules_sequence(sock_dir, qdb):
    vm = QdbVM(sock_dir)
    vm.multiread()
    qdb.wait_synced()
    ip = '10.137.0.5'
    base = '/qubes-firewall/' + ip
    qdb.set_rules(ip, 'drop', ['action=accept proto=tcp dstports=80-80', 'action=drop'])
    seq = [vm.recv()[:3] for _ in range(4)]
    assert seq == [(qubesdb.CMD_WRITE, base + '/policy', b'drop'),
                   (qubesdb.CMD_WRITE, base + '/0000', b'action=accept proto=tcp dstports=80-80'),
                   (qubesdb.CMD_WRITE, base + '/0001', b'action=drop'),
                   (qubesdb.CMD_WRITE, base, b'')]
    # second update: RM of the subtree first; numbering gaps preserved
    qdb.set_rules(ip, 'drop', [(0, 'action=accept'), (3, 'action=drop')])
    seq = [vm.recv()[:3] for _ in range(5)]
    assert seq == [(qubesdb.CMD_RM, base + '/', b''),
                   (qubesdb.CMD_WRITE, base + '/policy', b'drop'),
                   (qubesdb.CMD_WRITE, base + '/0000', b'action=accept'),
                   (qubesdb.CMD_WRITE, base + '/0003', b'action=drop'),
                   (qubesdb.CMD_WRITE, base, b'')]
    assert qdb.keys(base) == [base, base + '/0000', base + '/0003', base + '/policy']
    vm.close()


def test_qdb_vm_writes_and_wait_for_key(sock_dir, qdb):
    vm = QdbVM(sock_dir)
    vm.multiread()
    ip = '10.137.0.5'
    assert qdb.handled_count(ip) == 0

    def firewall():
        time.sleep(0.2)
        vm.msg(qubesdb.CMD_WRITE, '/qubes-firewall-handled/' + ip, '1')
        time.sleep(0.1)
        vm.msg(qubesdb.CMD_WRITE, '/qubes-firewall-handled/' + ip, '2')
    t = threading.Thread(target=firewall)
    t.start()
    assert qdb.wait_handled(ip, 1, timeout=T) == 2
    t.join(T)
    assert vm.recv()[:2] == (qubesdb.RESP_OK, '/qubes-firewall-handled/' + ip)
    assert vm.recv()[:2] == (qubesdb.RESP_OK, '/qubes-firewall-handled/' + ip)
    assert qdb.vm_writes == [('/qubes-firewall-handled/' + ip, '1'),
                             ('/qubes-firewall-handled/' + ip, '2')]
    with pytest.raises(TimeoutError):
        qdb.wait_for_key('/never', timeout=0.2)
    # a VM RM of an existing key is fine
    vm.msg(qubesdb.CMD_RM, '/qubes-firewall-handled/' + ip)
    assert vm.recv()[:2] == (qubesdb.RESP_OK, '/qubes-firewall-handled/' + ip)
    assert qdb.read('/qubes-firewall-handled/' + ip) is None
    assert qdb.fatal is None
    vm.close()


def test_qdb_message_split_into_single_bytes(sock_dir, qdb):
    vm = QdbVM(sock_dir)
    vm.multiread()
    msg = qubesdb.pack(qubesdb.CMD_WRITE, '/dns/10.137.0.5/example.com', "{'1.2.3.4/32'}")
    for b in msg:
        vm.send(bytes([b]))
    assert vm.recv()[:2] == (qubesdb.RESP_OK, '/dns/10.137.0.5/example.com')
    assert qdb.read('/dns/10.137.0.5/example.com') == "{'1.2.3.4/32'}"
    vm.close()


def _hdr(msg_type, path_field, data_len):
    return bytes([msg_type]) + path_field + b'\0\0\0' + struct.pack('<I', data_len)


FATAL_CASES = {
    # invalid types on the vchan
    'type-READ': (_hdr(0, b'/a'.ljust(64, b'\0'), 0), False),
    'type-LIST': (_hdr(3, bytes(64), 0), False),
    'type-WATCH': (_hdr(5, b'/a'.ljust(64, b'\0'), 0), False),
    'type-UNWATCH': (_hdr(6, b'/a'.ljust(64, b'\0'), 0), False),
    'type-RESP_ERROR_NOENT': (_hdr(8, b'/a'.ljust(64, b'\0'), 0), False),
    'type-RESP_READ': (_hdr(10, b'/a'.ljust(64, b'\0'), 0), False),
    'type-RESP_WATCH': (_hdr(13, b'/a'.ljust(64, b'\0'), 0), False),
    'type-200': (_hdr(200, bytes(64), 0), False),
    # bad paths / lengths
    'path-space': (_hdr(1, b'/a b'.ljust(64, b'\0'), 1) + b'x', False),
    'path-leading-dash': (_hdr(1, b'-a'.ljust(64, b'\0'), 1) + b'x', False),
    'path-8bit': (_hdr(1, b'/\xc3\xa9'.ljust(64, b'\0'), 1) + b'x', False),
    'data-len-3072': (_hdr(1, b'/a'.ljust(64, b'\0'), 3072) + b'x' * 3072, False),
    'data-len-huge': (_hdr(1, b'/a'.ljust(64, b'\0'), 0xFFFFFFFF), False),
    # semantic fatal cases
    'write-relative-path': (_hdr(1, b'a'.ljust(64, b'\0'), 1) + b'x', True),
    'write-trailing-slash': (_hdr(1, b'/a/'.ljust(64, b'\0'), 1) + b'x', True),
    'write-empty-path': (_hdr(1, bytes(64), 1) + b'x', True),
    'second-multiread': (_hdr(2, bytes(64), 0), True),
    'rm-missing': (_hdr(4, b'/missing'.ljust(64, b'\0'), 0), True),
    'rm-missing-prefix': (_hdr(4, b'/missing/'.ljust(64, b'\0'), 0), True),
    'resp-error-with-data': (_hdr(9, b'/a'.ljust(64, b'\0'), 2) + b'xx', False),
    'resp-multiread': (_hdr(11, b'/a'.ljust(64, b'\0'), 0), False),
}


@pytest.mark.parametrize('case', sorted(FATAL_CASES))
def test_qdb_fatal_conditions(sock_dir, qdb, case):
    data, replies = FATAL_CASES[case]
    qdb.write('/present', 'v')
    vm = QdbVM(sock_dir)
    vm.multiread()
    qdb.wait_synced()
    vm.send(data)
    reason = qdb.wait_exit(T)
    assert qdb.fatal == reason and reason
    if replies:
        # upstream answers (RESP_ERROR / RESP_ERROR_NOENT) before exiting
        t, path, _, _ = vm.recv()
        assert t in (qubesdb.RESP_ERROR, qubesdb.RESP_ERROR_NOENT)
        if case.startswith('rm-missing'):
            assert t == qubesdb.RESP_ERROR_NOENT
    assert_eof(vm.sock)
    vm.close()
    # the daemon serves this VM no more
    with pytest.raises((TimeoutError, ConnectionRefusedError, FileNotFoundError)):
        s = vchan.connect_unix(qdb.path, 0.3)
        try:
            s.settimeout(0.5)
            s.sendall(bytes([2]) + bytes(71))
            if s.recv(72) == b'':
                raise ConnectionRefusedError('closed')
        finally:
            s.close()
    with pytest.raises(qubesdb.QubesDBError):
        qdb.write('/after', 'x')
    with pytest.raises(qubesdb.QubesDBError):
        qdb.wait_for_key('/never', timeout=T)


def test_qdb_fatal_before_sync(sock_dir, qdb):
    vm = QdbVM(sock_dir)
    vm.msg(qubesdb.RESP_ERROR_NOENT, '/x')
    assert 'type' in qdb.wait_exit(T)
    assert qdb.fatal
    assert_eof(vm.sock)
    vm.close()


def test_qdb_recoverable_errors(sock_dir, qdb):
    vm = QdbVM(sock_dir)
    # MULTIREAD with data before the sync: RESP_ERROR, then a proper one works
    vm.msg(qubesdb.CMD_MULTIREAD, '', 'junk')
    assert vm.recv()[0] == qubesdb.RESP_ERROR
    assert not qdb.synced
    qdb.write('/k', 'v')
    assert vm.multiread() == [('/k', b'v')]
    # WRITE with a NUL in the data: RESP_ERROR, nothing stored
    vm.msg(qubesdb.CMD_WRITE, '/nul', b'a\0b')
    assert vm.recv()[:2] == (qubesdb.RESP_ERROR, '/nul')
    assert qdb.read('/nul') is None
    # RM with data: RESP_ERROR, key kept
    vm.msg(qubesdb.CMD_RM, '/k', 'x')
    assert vm.recv()[:2] == (qubesdb.RESP_ERROR, '/k')
    assert qdb.read('/k') == 'v'
    # the session is still alive
    vm.msg(qubesdb.CMD_WRITE, '/ok', '1')
    assert vm.recv()[:2] == (qubesdb.RESP_OK, '/ok')
    assert qdb.fatal is None and qdb.exit_reason is None
    assert len(qdb.errors_sent) == 3
    vm.close()


def test_qdb_max_lengths_accepted(sock_dir, qdb):
    vm = QdbVM(sock_dir)
    vm.multiread()
    key = '/' + 'k' * 62                 # 63 characters: the longest valid path
    vm.msg(qubesdb.CMD_WRITE, key, 'v' * 3071)
    assert vm.recv()[:2] == (qubesdb.RESP_OK, key)
    assert qdb.read(key) == 'v' * 3071
    # unterminated 64-byte path: upstream truncates to 63 characters
    vm.send(_hdr(1, b'/' + b'u' * 63, 1) + b'x')
    assert vm.recv()[:2] == (qubesdb.RESP_OK, '/' + 'u' * 62)
    assert qdb.warnings and qdb.fatal is None
    vm.close()


def test_qdb_reconnect_after_sync(sock_dir, qdb):
    vm = QdbVM(sock_dir)
    vm.multiread()
    qdb.wait_synced()
    vm.close()
    deadline = time.monotonic() + T
    while qdb.synced and time.monotonic() < deadline:
        time.sleep(0.01)
    qdb.write('/while-away', '1')        # not forwarded: nobody synced
    vm2 = QdbVM(sock_dir)
    assert ('/while-away', b'1') in vm2.multiread()
    qdb.wait_synced(2)
    assert qdb.connections == 2 and qdb.fatal is None
    vm2.close()


def test_qdb_disconnect_before_sync_exits(sock_dir, qdb):
    vm = QdbVM(sock_dir)
    vm.close()
    reason = qdb.wait_exit(T)
    assert 'before' in reason and qdb.fatal is None


def test_qdb_api_validation(sock_dir):
    d = QubesDBDaemon(sock_dir, VM, entries=[('/a', 'b')])
    for bad in ['a', '/a/', '/a b', '/' + 'x' * 63, '']:
        with pytest.raises(ValueError):
            d.write(bad, 'v')
    with pytest.raises(ValueError):
        d.write('/v', 'a\0b')
    with pytest.raises(ValueError):
        d.write('/v', 'x' * 3072)
    d.write('/v', 'x' * 3071)
    assert d.read('/a') == 'b'
    d.stop()                             # never started: stop is harmless


# ----------------------------------------------------------------------------
# XenStore

class XsClient:
    def __init__(self, path):
        self.sock = vchan.connect_unix(path, T)
        self.sock.settimeout(T)
        self.req = 0
        self.events = []

    def send(self, msg_type, payload=b'', tx_id=0, req_id=None):
        if req_id is None:
            self.req += 1
            req_id = self.req
        self.sock.sendall(struct.pack('<IIII', msg_type, req_id, tx_id, len(payload)) + payload)
        return req_id

    def recv(self):
        t, req_id, tx_id, n = struct.unpack('<IIII', recv_exact(self.sock, 16))
        return t, req_id, tx_id, recv_exact(self.sock, n) if n else b''

    def call(self, msg_type, payload=b'', tx_id=0):
        """Send a request; return (type, payload) of its reply; events are queued."""
        req_id = self.send(msg_type, payload, tx_id)
        while True:
            t, rid, tid, body = self.recv()
            if t == xenstore.XS_WATCH_EVENT:
                self.events.append(tuple(body.split(b'\0')[:2]))
                continue
            assert rid == req_id and tid == tx_id
            return t, body

    def event(self):
        if self.events:
            return self.events.pop(0)
        t, rid, tid, body = self.recv()
        assert t == xenstore.XS_WATCH_EVENT and rid == 0 and tid == 0
        assert body.endswith(b'\0') and body.count(b'\0') == 2
        return tuple(body.split(b'\0')[:2])

    def no_event(self, wait=0.2):
        if self.events:
            return False
        self.sock.settimeout(wait)
        try:
            data = self.sock.recv(1, socket.MSG_PEEK)
        except socket.timeout:
            return True
        finally:
            self.sock.settimeout(T)
        return data == b''

    def close(self):
        vchan.close_quietly(self.sock)


FW = 3


@pytest.fixture
def xs(sock_dir):
    d = XenStoreDaemon(os.path.join(sock_dir, 'xenstored.sock'), FW,
                       entries=world.xenstore_base_entries(world.firewall_vm(domid=FW)))
    d.start()
    yield d
    d.stop()


@pytest.fixture
def xc(xs):
    c = XsClient(xs.socket_path)
    xs.wait_connections(1)
    yield c
    c.close()


def test_xs_wire_header_and_basic_ops(xs, xc):
    # raw bytes: READ "domid" (relative), req_id 7
    xc.sock.sendall(struct.pack('<IIII', 2, 7, 0, 6) + b'domid\0')
    assert recv_exact(xc.sock, 16) == struct.pack('<IIII', 2, 7, 0, 1)
    assert recv_exact(xc.sock, 1) == b'3'
    assert xc.call(xenstore.XS_GET_DOMAIN_PATH, b'3\0') == (10, b'/local/domain/3\0')
    assert xc.call(xenstore.XS_GET_DOMAIN_PATH, b'7\0') == (10, b'/local/domain/7\0')
    assert xc.call(xenstore.XS_WRITE, b'data/x/y\0hello') == (11, b'OK\0')
    assert xs.read('/local/domain/3/data/x/y') == 'hello'
    assert xs.read('/local/domain/3/data/x') == ''          # parent created empty
    assert xc.call(xenstore.XS_READ, b'/local/domain/3/data/x/y\0') == (2, b'hello')
    assert xc.call(xenstore.XS_MKDIR, b'data/x/z\0') == (12, b'OK\0')
    assert xc.call(xenstore.XS_DIRECTORY, b'data/x\0') == (1, b'y\0z\0')
    assert xc.call(xenstore.XS_READ, b'data/nope\0') == (16, b'ENOENT\0')
    assert xc.call(xenstore.XS_DIRECTORY, b'data/nope\0') == (16, b'ENOENT\0')
    assert xc.call(xenstore.XS_RM, b'data/x\0') == (13, b'OK\0')
    assert not xs.exists('data/x/y') and not xs.exists('data/x')
    assert xc.call(xenstore.XS_RM, b'data/x\0') == (13, b'OK\0')          # absent: fine
    assert xc.call(xenstore.XS_RM, b'data/x/y/z\0') == (16, b'ENOENT\0')  # parent absent
    for bad in [b'a b\0', b'/a//b\0', b'/a/\0', b'\0', b'/a']:
        assert xc.call(xenstore.XS_READ, bad) == (16, b'EINVAL\0'), bad
    assert xc.call(xenstore.XS_READ, b'/' + b'a' * 3072 + b'\0') == (16, b'EINVAL\0')
    assert xc.call(xenstore.XS_DIRECTORY_PART, b'/\x000\0')[0] == 16
    assert xc.call(99, b'') == (16, b'EINVAL\0')
    assert xc.call(xenstore.XS_INTRODUCE, b'1\x002\x003\0') == (16, b'EACCES\0')
    assert xc.call(xenstore.XS_SET_PERMS, b'domid\0n3\0r0\0') == (14, b'OK\0')
    assert xc.call(xenstore.XS_GET_PERMS, b'domid\0')[0] == 3


def test_xs_payload_too_long_kills_connection(xs, xc):
    xc.sock.sendall(struct.pack('<IIII', 2, 1, 0, 4097) + b'a' * 4097)
    assert_eof(xc.sock)
    assert xs.closed_connections and '4097' in xs.closed_connections[-1][1]
    # a payload of exactly 4096 is fine
    c2 = XsClient(xs.socket_path)
    value = b'v' * (4096 - len(b'data/big\0'))
    assert c2.call(xenstore.XS_WRITE, b'data/big\0' + value) == (11, b'OK\0')
    assert xs.read_bytes('data/big') == value
    c2.close()


def test_xs_watch_semantics(xs, xc):
    # relative watch: reply first, then the initial event with the relative path
    rid = xc.send(xenstore.XS_WATCH, b'backend/vif\0tok1\0')
    assert xc.recv() == (4, rid, 0, b'OK\0')
    assert xc.event() == (b'backend/vif', b'tok1')
    assert xs.watch_count() == 1
    # a change below (dom0 / libxl through the API) fires with the changed path
    xs.write('/local/domain/3/backend/vif/7/0/ip', '10.137.0.7')
    got = set()
    while True:
        ev = xc.event()
        got.add(ev)
        if ev[0] == b'backend/vif/7/0/ip':
            break
    assert (b'backend/vif/7', b'tok1') in got       # parents created fire too
    # siblings and the parent do not fire
    xs.write('/local/domain/3/backend/other', 'x')
    xs.write('/local/domain/3/backend', 'x')
    assert xc.no_event()
    # absolute watch reports absolute paths; removal fires watches below the node
    assert xc.call(xenstore.XS_WATCH, b'/local/domain/3/backend/vif/7/0/ip\0tok2\0') == \
        (4, b'OK\0')
    assert xc.event() == (b'/local/domain/3/backend/vif/7/0/ip', b'tok2')
    xs.rm('/local/domain/3/backend/vif/7')
    evs = {xc.event(), xc.event()}
    assert evs == {(b'backend/vif/7', b'tok1'), (b'/local/domain/3/backend/vif/7/0/ip', b'tok2')}
    assert xc.no_event()
    # duplicate, unknown unwatch, unwatch
    assert xc.call(xenstore.XS_WATCH, b'backend/vif\0tok1\0') == (16, b'EEXIST\0')
    assert xc.call(xenstore.XS_UNWATCH, b'backend/vif\0nope\0') == (16, b'ENOENT\0')
    assert xc.call(xenstore.XS_UNWATCH, b'backend/vif\0tok1\0') == (5, b'OK\0')
    assert xc.call(xenstore.XS_UNWATCH, b'/local/domain/3/backend/vif/7/0/ip\0tok2\0') == \
        (5, b'OK\0')
    assert xs.watch_count() == 0
    xs.write('/local/domain/3/backend/vif/8/0/ip', 'x')
    assert xc.no_event()


def test_xs_own_writes_fire_and_special_watches(xs, xc):
    assert xc.call(xenstore.XS_WATCH, b'@releaseDomain\0rel\0') == (4, b'OK\0')
    assert xc.event() == (b'@releaseDomain', b'rel')
    assert xc.call(xenstore.XS_WATCH, b'control/shutdown\0sd\0') == (4, b'OK\0')
    assert xc.event() == (b'control/shutdown', b'sd')
    xs.write('control/shutdown', 'poweroff')
    assert xc.event() == (b'control/shutdown', b'sd')
    # the client's own write fires its own watch too
    assert xc.call(xenstore.XS_WRITE, b'control/shutdown\0') == (11, b'OK\0')
    assert xc.event() == (b'control/shutdown', b'sd')
    xs.fire_special('@releaseDomain')
    assert xc.event() == (b'@releaseDomain', b'rel')
    assert xc.no_event()


def test_xs_watch_count_200_cycles_and_quota(xs, xc):
    base = xs.watch_count(xc_id := xs.connection_ids()[0])
    for i in range(200):
        tok = b'vif-%d' % i
        path = b'/local/domain/%d/device/vif/0/state' % (100 + i)
        assert xc.call(xenstore.XS_WATCH, path + b'\0' + tok + b'\0') == (4, b'OK\0')
        assert xc.event() == (path, tok)
        assert xs.watch_count(xc_id) == base + 1
        assert xc.call(xenstore.XS_UNWATCH, path + b'\0' + tok + b'\0') == (5, b'OK\0')
    assert xs.watch_count(xc_id) == base
    # quota (C xenstored: 128 per domain) -> E2BIG
    xs.max_watches = 3
    for i in range(3):
        assert xc.call(xenstore.XS_WATCH, b'w%d\0t\0' % i)[0] == 4
        xc.event()
    assert xc.call(xenstore.XS_WATCH, b'w9\0t\0') == (16, b'E2BIG\0')
    assert xs.watch_count(xc_id) == 3
    assert xc.call(xenstore.XS_RESET_WATCHES, b'\0') == (21, b'OK\0')
    assert xs.watch_count(xc_id) == 0
    # watches die with their connection
    c2 = XsClient(xs.socket_path)
    assert c2.call(xenstore.XS_WATCH, b'x\0t\0')[0] == 4
    assert xs.watch_count() == 1
    c2.close()
    deadline = time.monotonic() + T
    while xs.watch_count() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert xs.watch_count() == 0


def _tx_start(c):
    t, body = c.call(xenstore.XS_TRANSACTION_START, b'\0')
    assert t == 6 and body.endswith(b'\0')
    tx = int(body[:-1])
    assert tx != 0
    return tx


def test_xs_transactions(xs, xc):
    assert xc.call(xenstore.XS_WATCH, b'backend\0w\0')[0] == 4
    xc.event()
    tx = _tx_start(xc)
    assert xs.transaction_count() == 1
    assert xc.call(xenstore.XS_WRITE, b'backend/a\x001', tx) == (11, b'OK\0')
    assert xc.call(xenstore.XS_WRITE, b'backend/b\x002', tx) == (11, b'OK\0')
    assert xc.call(xenstore.XS_READ, b'backend/a\0', tx) == (2, b'1')
    assert xs.read('backend/a') is None                      # invisible until commit
    assert xc.call(xenstore.XS_READ, b'backend/a\0') == (16, b'ENOENT\0')
    assert xc.no_event()
    assert xc.call(xenstore.XS_TRANSACTION_END, b'T\0', tx) == (7, b'OK\0')
    assert xs.read('backend/a') == '1' and xs.read('backend/b') == '2'
    assert [xc.event() for _ in range(3)] == [(b'backend', b'w'), (b'backend/a', b'w'),
                                              (b'backend/b', b'w')]
    assert xs.transaction_count() == 0
    # abort discards
    tx = _tx_start(xc)
    xc.call(xenstore.XS_WRITE, b'backend/c\x003', tx)
    assert xc.call(xenstore.XS_TRANSACTION_END, b'F\0', tx) == (7, b'OK\0')
    assert xs.read('backend/c') is None
    # conflict: someone else changes a node the transaction read -> EAGAIN
    tx = _tx_start(xc)
    assert xc.call(xenstore.XS_READ, b'backend/a\0', tx) == (2, b'1')
    xc.call(xenstore.XS_WRITE, b'backend/d\x004', tx)
    xs.write('backend/a', 'changed')
    assert xc.call(xenstore.XS_TRANSACTION_END, b'T\0', tx) == (16, b'EAGAIN\0')
    assert xs.read('backend/d') is None
    # an unrelated change does not conflict
    tx = _tx_start(xc)
    xc.call(xenstore.XS_WRITE, b'backend/e\x005', tx)
    xs.write('/local/domain/0/unrelated', 'x')
    assert xc.call(xenstore.XS_TRANSACTION_END, b'T\0', tx) == (7, b'OK\0')
    assert xs.read('backend/e') == '5'
    # injected EAGAIN, then the retry succeeds
    xs.inject_eagain = 1
    for expect in (b'EAGAIN\0', b'OK\0'):
        tx = _tx_start(xc)
        xc.call(xenstore.XS_WRITE, b'backend/f\x006', tx)
        assert xc.call(xenstore.XS_TRANSACTION_END, b'T\0', tx)[1] == expect
    assert xs.read('backend/f') == '6'
    # unknown transaction ids and bad END arguments
    assert xc.call(xenstore.XS_READ, b'backend/a\0', 999) == (16, b'ENOENT\0')
    tx = _tx_start(xc)
    assert xc.call(xenstore.XS_TRANSACTION_END, b'X\0', tx) == (16, b'EINVAL\0')
    assert xc.call(xenstore.XS_TRANSACTION_START, b'\0', tx) == (16, b'EBUSY\0')
    assert xc.call(xenstore.XS_TRANSACTION_END, b'F\0', tx) == (7, b'OK\0')


def test_xs_transaction_rm_fires_on_commit(xs, xc):
    xs.write('backend/vif/7/0/state', '4')
    assert xc.call(xenstore.XS_WATCH, b'backend/vif/7/0/state\0s\0')[0] == 4
    xc.event()
    tx = _tx_start(xc)
    assert xc.call(xenstore.XS_RM, b'backend/vif/7\0', tx) == (13, b'OK\0')
    assert xs.exists('backend/vif/7/0/state')
    assert xc.no_event()
    assert xc.call(xenstore.XS_TRANSACTION_END, b'T\0', tx) == (7, b'OK\0')
    assert xc.event() == (b'backend/vif/7/0/state', b's')
    assert not xs.exists('backend/vif/7')


# ----------------------------------------------------------------------------
# qrexec

class FakeAgent:
    """The VM's qrexec agent: control server on 512, data client per call."""

    def __init__(self, sock_dir, version=3, hello_type=qrexec.MSG_HELLO, hello_len=4,
                 exit_body=struct.pack('<I', 0), out=b'', err=b'', chunk=None,
                 send_terminated=True):
        self.sock_dir = sock_dir
        self.version = version
        self.hello_type = hello_type
        self.hello_len = hello_len
        self.exit_body = exit_body
        self.out, self.err = out, err
        self.chunk = chunk
        self.send_terminated = send_terminated
        self.daemon_hello = None
        self.data_hellos = []
        self.execs = []            # [(type, raw body)]
        self.stdin = []            # [[chunks]]
        self.error = None
        self.stop = threading.Event()
        self.lsock = vchan.listen_unix(vchan.vchan_path(sock_dir, VM, 0, 512))
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            s = vchan.accept_one(self.lsock, self.stop, time.monotonic() + T)
            if s is None:
                return
            self.ctrl = s
            body = struct.pack('<I', self.version)[:self.hello_len].ljust(self.hello_len, b'\0')
            s.sendall(struct.pack('<II', self.hello_type, self.hello_len) + body)
            hdr = vchan.recv_exact(s, 8, self.stop, time.monotonic() + T)
            t, n = struct.unpack('<II', hdr)
            self.daemon_hello = hdr + vchan.recv_exact(s, n, self.stop, time.monotonic() + T)
            while True:
                hdr = vchan.recv_exact(s, 8, self.stop)
                t, n = struct.unpack('<II', hdr)
                body = vchan.recv_exact(s, n, self.stop, time.monotonic() + T)
                self.execs.append((t, hdr + body))
                domain, port = struct.unpack('<II', body[:8])
                self._serve(domain, port)
                if self.send_terminated:
                    s.sendall(struct.pack('<II', 0x211, 8) + body[:8])
        except (vchan.PeerClosed, vchan.Stopped):
            pass
        except Exception as e:
            self.error = e

    def _serve(self, domain, port):
        d = vchan.connect_unix(vchan.vchan_path(self.sock_dir, domain, VM, port), T)
        try:
            dl = time.monotonic() + T
            hdr = vchan.recv_exact(d, 8, self.stop, dl)
            self.data_hellos.append(hdr + vchan.recv_exact(d, 4, self.stop, dl))
            d.sendall(qrexec.hello(self.version))
            chunks = []
            while True:
                t, n = struct.unpack('<II', vchan.recv_exact(d, 8, self.stop, dl))
                assert t == qrexec.MSG_DATA_STDIN
                if n == 0:
                    break
                chunks.append(vchan.recv_exact(d, n, self.stop, dl))
            self.stdin.append(chunks)
            if self.chunk is not None:
                d.sendall(qrexec.pack(qrexec.MSG_DATA_STDOUT, b'x' * self.chunk))
            if self.out:
                d.sendall(qrexec.pack(qrexec.MSG_DATA_STDOUT, self.out))
            d.sendall(qrexec.pack(qrexec.MSG_DATA_STDOUT))
            if self.err:
                d.sendall(qrexec.pack(qrexec.MSG_DATA_STDERR, self.err))
            d.sendall(qrexec.pack(qrexec.MSG_DATA_STDERR))
            d.sendall(qrexec.pack(qrexec.MSG_DATA_EXIT_CODE, self.exit_body))
            # wait for the daemon side to close
            d.settimeout(T)
            while d.recv(4096):
                pass
        finally:
            vchan.close_quietly(d)

    def close(self):
        self.stop.set()
        vchan.close_quietly(getattr(self, 'ctrl', None))
        vchan.close_quietly(self.lsock)
        self.thread.join(T)
        assert not self.thread.is_alive()


def test_qrexec_v3_handshake_and_call_vectors(sock_dir):
    agent = FakeAgent(sock_dir, version=3)
    with QrexecDaemon(sock_dir, VM, version=3, default_user='root') as d:
        assert d.connect(T) == 3
        deadline = time.monotonic() + T
        while agent.daemon_hello is None and time.monotonic() < deadline:
            time.sleep(0.01)
        # §3.3: a v3 agent receives 3 back: 00 03 00 00 04 00 00 00 03 00 00 00
        assert agent.daemon_hello == bytes.fromhex('000300000400000003000000')
        code, out, err = d.call('DEFAULT:QUBESRPC qubes.WaitForSession dom0')
        assert (code, out, err) == (0, b'', b'')
        # §3.4 example control message on port 513
        assert agent.execs[0][1] == (bytes.fromhex('00020000' '30000000' '00000000' '01020000')
                                     + b'root:QUBESRPC qubes.WaitForSession dom0\0')
        # data channel: dom0 sends its HELLO first with its own version
        assert agent.data_hellos[0] == qrexec.hello(3)
        assert agent.stdin == [[]]
        assert d.ports_in_use == []
    agent.close()
    assert agent.error is None


def test_qrexec_stdin_stdout_stderr_and_port_reuse(sock_dir):
    agent = FakeAgent(sock_dir, version=3, out=b'hello\n', err=b'warn\n',
                      exit_body=struct.pack('<I', 1))
    with QrexecDaemon(sock_dir, VM) as d:
        d.connect(T)
        r = d.run_service('qubes.SetDateTime', stdin=b'2015-07-31T16:10:43+0000\n')
        assert tuple(r) == (1, b'hello\n', b'warn\n')
        assert r.stdout_eof and r.stderr_eof and r.connection_terminated
        assert r.messages[-1] == (qrexec.MSG_DATA_EXIT_CODE, struct.pack('<I', 1))
        assert agent.stdin[0] == [b'2015-07-31T16:10:43+0000\n']
        assert agent.execs[0][1][16:] == b'user:QUBESRPC qubes.SetDateTime dom0\0'
        r2 = d.call('DEFAULT:QUBESRPC qubes.WaitForSession+ dom0', just_exec=True)
        assert r2.port == r.port == 513           # released by CONNECTION_TERMINATED
        assert struct.unpack('<I', agent.execs[1][1][:4])[0] == qrexec.MSG_JUST_EXEC
    agent.close()


def test_qrexec_v2_daemon_chunks_and_reply(sock_dir):
    agent = FakeAgent(sock_dir, version=3)
    with QrexecDaemon(sock_dir, VM, version=2) as d:
        assert d.connect(T) == 2
        deadline = time.monotonic() + T
        while agent.daemon_hello is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert agent.daemon_hello == qrexec.hello(2)          # R4.0 daemon sends its own
        data = bytes(range(256)) * 40                         # 10240 bytes
        r = d.call('user:cat', stdin=data)
        assert r.version == 2 and r.exit_code == 0
        assert [len(c) for c in agent.stdin[0]] == [4096, 4096, 2048]
        assert b''.join(agent.stdin[0]) == data
    agent.close()


def test_qrexec_v2_agent_with_v3_daemon(sock_dir):
    agent = FakeAgent(sock_dir, version=2)
    with QrexecDaemon(sock_dir, VM, version=3) as d:
        assert d.connect(T) == 2
        deadline = time.monotonic() + T
        while agent.daemon_hello is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert agent.daemon_hello == qrexec.hello(2)          # echo
        r = d.call('user:x', stdin=b'y' * 5000)
        assert r.version == 2 and [len(c) for c in agent.stdin[0]] == [4096, 904]
        # an agent chunk above the v2 limit is a protocol error
    agent.close()
    agent = FakeAgent(sock_dir, version=2, chunk=4097)
    with QrexecDaemon(sock_dir, VM, version=3) as d:
        d.connect(T)
        with pytest.raises(qrexec.QrexecProtocolError):
            d.call('user:x', wait_terminated=0)
    agent.close()


@pytest.mark.parametrize('kw', [dict(version=1), dict(hello_type=0x301),
                                dict(hello_len=8), dict(hello_len=2)])
def test_qrexec_bad_agent_hello(sock_dir, kw):
    agent = FakeAgent(sock_dir, **kw)
    d = QrexecDaemon(sock_dir, VM)
    with pytest.raises(qrexec.QrexecProtocolError):
        d.connect(T)
    d.close()
    agent.close()


def test_qrexec_short_exit_code_and_agent_eof(sock_dir):
    agent = FakeAgent(sock_dir, exit_body=b'\x01', send_terminated=False)
    with QrexecDaemon(sock_dir, VM) as d:
        d.connect(T)
        r = d.call('user:x', wait_terminated=0.2)
        assert r.exit_code == 255 and not r.connection_terminated
        assert d.ports_in_use == [513]
        agent.close()
        assert d.agent_closed.wait(T)
        assert d.control_error is None


def test_qrexec_connect_timeout(sock_dir):
    d = QrexecDaemon(sock_dir, VM)
    with pytest.raises(TimeoutError):
        d.connect(0.3)
    d.close()


# ----------------------------------------------------------------------------
# world

def test_world_addressing():
    assert world.vm_ipv4(5) == '10.137.0.5'
    assert world.vm_ipv4(254) == '10.137.0.254'
    assert world.vm_ipv4(255) == '10.137.1.1'      # (255-1)//254 = 1, (254 % 254)+1 = 1
    assert world.vm_ipv4(508) == '10.137.1.254'
    assert world.vm_ipv4(509) == '10.137.2.1'
    assert world.vm_ipv4(7, disposable=True) == '10.138.0.7'
    assert world.vm_ipv6(0x1f) == 'fd09:24ef:4179::a89:1f'
    assert world.vm_ipv6(3, disposable=True) == 'fd09:24ef:4179::a8a:3'


def test_world_qdb_entries_are_valid_and_complete(sock_dir):
    fw = world.firewall_vm(domid=VM)
    net = world.netvm()
    c1 = world.VM('work', qid=10, domid=11, rules=['action=accept proto=tcp dstports=443-443'])
    c2 = world.VM('personal', qid=11, domid=12, ipv6=True)
    w = world.World(fw, net, [c1, c2])
    entries = w.qdb_entries()
    keys = [k for k, _ in entries]
    assert len(keys) == len(set(keys))
    for k, v in entries:
        assert qubesdb._key_is_storable(k), k
        assert len(v.encode()) < qubesdb.MAX_DATA and '\0' not in v
    d = dict(entries)
    assert d['/qubes-ip'] == fw.ip == '10.137.0.3'
    assert d['/qubes-gateway'] == net.ip
    assert (d['/qubes-primary-dns'], d['/qubes-secondary-dns']) == world.DNS
    assert d['/qubes-netvm-gateway'] == fw.ip
    assert d['/qubes-firewall/10.137.0.10/0000'] == 'action=accept proto=tcp dstports=443-443'
    assert d['/qubes-firewall/10.137.0.10'] == '' and d['/qubes-firewall/10.137.0.10/policy']
    assert d['/qubes-firewall/%s/0000' % c2.ip6] == 'action=accept'
    # the commit key comes after its subtree, as dom0 writes it
    assert keys.index('/qubes-firewall/10.137.0.10') > keys.index('/qubes-firewall/10.137.0.10/0000')
    with QubesDBDaemon(sock_dir, VM) as qdb:
        w.populate(qdb=qdb)
        vm = QdbVM(sock_dir)
        assert dict(vm.multiread()) == {k: v.encode() for k, v in entries}
        vm.close()


def test_world_vif_attach_detach(sock_dir, xs):
    fw = world.firewall_vm(domid=FW)
    client = world.VM('work', qid=10, domid=11, ipv6=True)
    w = world.World(fw, world.netvm(), [])
    xs.write_many(w.xenstore_entries())
    b = world.vif_backend_path(fw, client)
    # a minimal backend: InitWait on appearance, Closed + rm on Closing
    stop = threading.Event()

    def backend():
        xs.wait_for(b + '/state', timeout=T)
        xs.write(b + '/state', '2')
        xs.wait_for(b + '/state', lambda v: v == '5', T)
        xs.write(b + '/state', '6')
        xs.rm(b)
    t = threading.Thread(target=backend)
    t.start()
    world.attach_vif(xs, fw, client, wait_initwait=T)
    assert xs.read(b + '/ip') == '%s %s' % (client.ip, client.ip6)
    assert xs.read(b + '/frontend') == '/local/domain/11/device/vif/0'
    assert xs.read('/local/domain/11/device/vif/0/backend') == b
    assert xs.directory('backend/vif') == ['11']
    world.detach_vif(xs, fw, client, timeout=T)
    t.join(T)
    stop.set()
    assert not xs.exists(b) and not xs.exists('/local/domain/11/device/vif/0')
    assert xs.read('backend/vif') == ''


def test_world_detach_times_out_without_backend(sock_dir, xs):
    fw = world.firewall_vm(domid=FW)
    client = world.VM('work', qid=10, domid=11)
    world.attach_vif(xs, fw, client)
    with pytest.raises(TimeoutError):
        world.detach_vif(xs, fw, client, timeout=0.3)
    b = world.vif_backend_path(fw, client)
    assert xs.read(b + '/online') == '0' and xs.read(b + '/state') == '5'


def test_no_threads_left_behind():
    # every daemon above was stopped; only the main thread (and pytest's) remain
    leftovers = [t.name for t in threading.enumerate()
                 if t.name.startswith(('qubesdb', 'xs-', 'xenstored', 'qrexec'))]
    assert leftovers == []
