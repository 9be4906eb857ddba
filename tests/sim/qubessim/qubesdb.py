"""dom0's per-VM qubesdb-daemon, over a socket vchan.

dom0 is the vchan server on port 111 (qubes-protocols.md §2.1), listening on
``vchan.0.<vm_domid>.111.sock``; the VM connects, sends exactly one
CMD_MULTIREAD and gets every key (RESP_MULTIREAD each, then the terminator).
From then on, writes/removes done through this object's Python API (as qubesd
would through the local socket) are forwarded as CMD_WRITE / CMD_RM.

dom0's limits are enforced exactly as the real daemon does (§2.4, QDB
db-cmds.c): a bad header (type, path, length) from the VM, a second
MULTIREAD, an RM for a missing key, a RESP_ERROR carrying data, a
RESP_MULTIREAD (never requested) or RESP_ERROR_NOENT from the VM make the
daemon "exit": the connection is closed, ``fatal`` records why, and the VM is
not served again. Recoverable errors (NUL in WRITE data, data on RM or
MULTIREAD) are answered with RESP_ERROR, as upstream does.

If the VM disconnects after a completed sync the daemon listens again and
waits for a new MULTIREAD (upstream reconnect); if it disconnects before
syncing the daemon exits ("domain is probably dead").
"""

import struct
import threading
import time

from . import vchan

QDB_PORT = 111
HDR_LEN = 72
MAX_PATH = 64            # including the NUL
MAX_DATA = 3072          # data_len must be < MAX_DATA

CMD_READ = 0
CMD_WRITE = 1
CMD_MULTIREAD = 2
CMD_LIST = 3
CMD_RM = 4
CMD_WATCH = 5
CMD_UNWATCH = 6
RESP_OK = 7
RESP_ERROR_NOENT = 8
RESP_ERROR = 9
RESP_READ = 10
RESP_MULTIREAD = 11
RESP_LIST = 12
RESP_WATCH = 13

TYPE_NAMES = {
    CMD_READ: 'CMD_READ', CMD_WRITE: 'CMD_WRITE', CMD_MULTIREAD: 'CMD_MULTIREAD',
    CMD_LIST: 'CMD_LIST', CMD_RM: 'CMD_RM', CMD_WATCH: 'CMD_WATCH',
    CMD_UNWATCH: 'CMD_UNWATCH', RESP_OK: 'RESP_OK', RESP_ERROR_NOENT: 'RESP_ERROR_NOENT',
    RESP_ERROR: 'RESP_ERROR', RESP_READ: 'RESP_READ', RESP_MULTIREAD: 'RESP_MULTIREAD',
    RESP_LIST: 'RESP_LIST', RESP_WATCH: 'RESP_WATCH',
}

# Types dom0's daemon accepts on the vchan (QDB db-cmds.c verify_hdr).
VCHAN_TYPES = (CMD_WRITE, CMD_MULTIREAD, CMD_RM, RESP_OK, RESP_ERROR, RESP_MULTIREAD)

_PATH_CHARS = frozenset(b'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-/.:@')


class QubesDBError(Exception):
    """Raised by the Python API (the daemon has exited, or bad arguments)."""


def pack(msg_type, path=b'', data=b''):
    """Build one QubesDB message: 72-byte header (pad sent as zeros) + data."""
    if isinstance(path, str):
        path = path.encode()
    if isinstance(data, str):
        data = data.encode()
    if len(path) >= MAX_PATH:
        raise ValueError('path too long')
    return struct.pack('<B64s3xI', msg_type, path, len(data)) + data


def unpack_header(hdr):
    """Split a 72-byte header into (type, raw 64-byte path field, data_len)."""
    if len(hdr) != HDR_LEN:
        raise ValueError('header must be 72 bytes')
    msg_type, path_raw, data_len = struct.unpack('<B64s3xI', hdr)
    return msg_type, path_raw, data_len


def path_is_valid(path):
    """§2.4 path characters; leading '-' forbidden; length < 64. bytes or str."""
    if isinstance(path, str):
        path = path.encode('utf-8', 'surrogateescape')
    if len(path) >= MAX_PATH:
        return False
    if path[:1] == b'-':
        return False
    return all(c in _PATH_CHARS for c in path)


def _key_is_storable(path):
    """qubesdb_insert: must start with '/', must not end with '/'."""
    return path_is_valid(path) and path.startswith('/') and not path.endswith('/')


def _as_bytes(value):
    if isinstance(value, bytes):
        return value
    return str(value).encode('utf-8', 'surrogateescape')


def _as_str(value):
    return None if value is None else value.decode('utf-8', 'surrogateescape')


class _Fatal(Exception):
    pass


class QubesDBDaemon:
    """dom0's qubesdb-daemon for one VM.

    Thread-safe. Use as a context manager or call start()/stop().
    Values are stored as bytes; the str API encodes/decodes UTF-8.
    """

    def __init__(self, sock_dir, vm_domid, entries=(), io_timeout=10.0):
        self.sock_dir = str(sock_dir)
        self.vm_domid = int(vm_domid)
        self.path = vchan.vchan_path(self.sock_dir, 0, self.vm_domid, QDB_PORT)
        self.io_timeout = io_timeout
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._db = {}
        self._stop = threading.Event()
        self._thread = None
        self._writer = None
        self._conn = None
        self._remote_connected = False
        # observable state for tests
        self.fatal = None            # str: why the daemon exited on a protocol violation
        self.exit_reason = None      # str: why the daemon exited (fatal or not)
        self.exited = threading.Event()
        self.syncs = 0               # number of MULTIREADs served (1 + reconnects)
        self.connections = 0         # vchan connections accepted
        self.vm_writes = []          # [(key, value str)] accepted CMD_WRITEs from the VM
        self.vm_rms = []             # [path] accepted CMD_RMs from the VM
        self.vm_responses = []       # [(type, path str)] RESP_OK/RESP_ERROR from the VM
        self.errors_sent = []        # [(type, path str)] error replies we sent (recoverable)
        self.warnings = []           # non-fatal oddities (e.g. unterminated path)
        for key, value in entries:
            self.write(key, value)

    # ---- lifecycle -------------------------------------------------------

    def start(self):
        if self._thread is not None:
            raise QubesDBError('already started')
        self._lsock = vchan.listen_unix(self.path)
        self._thread = threading.Thread(target=self._run, name='qubesdb-%d' % self.vm_domid,
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout=5.0):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise RuntimeError('qubesdb daemon thread did not stop')
        self._close_conn()
        vchan.close_quietly(getattr(self, '_lsock', None))
        self._lsock = None

    def __enter__(self):
        if self._thread is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    # ---- dom0-side API (what qubesd does through the local socket) ---------

    def write(self, key, value=''):
        """Store key=value; forwarded to the VM as CMD_WRITE once it has synced."""
        data = _as_bytes(value)
        if not _key_is_storable(key):
            raise ValueError('invalid QubesDB key %r' % (key,))
        if len(data) >= MAX_DATA or b'\0' in data:
            raise ValueError('invalid QubesDB value for %r' % (key,))
        with self._cond:
            self._check_alive()
            self._db[key] = data
            if self._remote_connected:
                self._writer.send(pack(CMD_WRITE, key, data))
            self._cond.notify_all()

    def rm(self, path):
        """Remove a key, or every key under a prefix ending in '/'.

        Returns False (nothing forwarded) if nothing matched, like upstream."""
        if not path or not path_is_valid(path):
            raise ValueError('invalid QubesDB path %r' % (path,))
        with self._cond:
            self._check_alive()
            removed = self._remove(path)
            if removed and self._remote_connected:
                self._writer.send(pack(CMD_RM, path))
            self._cond.notify_all()
            return bool(removed)

    def read(self, key, default=None):
        with self._lock:
            value = self._db.get(key)
        return default if value is None else _as_str(value)

    def read_bytes(self, key):
        with self._lock:
            return self._db.get(key)

    def keys(self, prefix=''):
        with self._lock:
            return sorted(k for k in self._db if k.startswith(prefix))

    def items(self, prefix=''):
        with self._lock:
            return [(k, _as_str(self._db[k])) for k in sorted(self._db) if k.startswith(prefix)]

    def set_rules(self, ip, policy, rules):
        """dom0's rule update sequence (§6.1): RM "<base>/" (only forwarded if
        something existed), WRITE policy, WRITE NNNN..., WRITE base "".

        rules: list of rule strings (numbered 0000, 0001, ...) or of
        (number, rule) pairs to reproduce numbering gaps."""
        base = '/qubes-firewall/%s' % ip
        self.rm(base + '/')
        self.write(base + '/policy', policy)
        for i, rule in enumerate(rules):
            if isinstance(rule, tuple):
                number, rule = rule
            else:
                number = i
            self.write('%s/%04d' % (base, number), rule)
        self.write(base, '')

    def send_raw(self, data):
        """Send arbitrary bytes to the VM (to test the VM's input validation)."""
        with self._lock:
            if self._writer is None:
                raise QubesDBError('no VM connected')
            self._writer.send(data)

    # ---- waiting helpers --------------------------------------------------

    def wait_for_key(self, key, predicate=None, timeout=10.0):
        """Wait until key exists and predicate(value str) is true; returns the value.

        Raises TimeoutError, or QubesDBError as soon as the daemon exits."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = self._db.get(key)
                if value is not None and (predicate is None or predicate(_as_str(value))):
                    return _as_str(value)
                if self.exit_reason is not None:
                    raise QubesDBError('qubesdb daemon exited: %s' % self.exit_reason)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError('QubesDB key %s: condition not met in %.1fs (value %r)'
                                       % (key, timeout, _as_str(value)))
                self._cond.wait(min(left, 0.2))

    def wait_for_absent(self, key, timeout=10.0):
        deadline = time.monotonic() + timeout
        with self._cond:
            while key in self._db:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError('QubesDB key %s still present' % key)
                self._cond.wait(min(left, 0.2))

    def handled_count(self, ip):
        """Current /qubes-firewall-handled/<ip> as int (0 if absent/garbage)."""
        value = self.read('/qubes-firewall-handled/%s' % ip)
        try:
            return int(value)
        except (TypeError, ValueError):
            return 0

    def wait_handled(self, ip, above, timeout=10.0):
        """Wait until /qubes-firewall-handled/<ip> is an integer > above."""
        def bigger(v):
            try:
                return int(v) > above
            except ValueError:
                return False
        return int(self.wait_for_key('/qubes-firewall-handled/%s' % ip, bigger, timeout))

    def wait_synced(self, count=1, timeout=10.0):
        """Wait until `count` MULTIREADs have been served."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.syncs < count:
                if self.exit_reason is not None:
                    raise QubesDBError('qubesdb daemon exited: %s' % self.exit_reason)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError('VM did not sync QubesDB within %.1fs' % timeout)
                self._cond.wait(min(left, 0.2))

    def wait_exit(self, timeout=10.0):
        """Wait for the daemon to exit; returns exit_reason."""
        if not self.exited.wait(timeout):
            raise TimeoutError('qubesdb daemon still running')
        return self.exit_reason

    @property
    def synced(self):
        return self._remote_connected

    # ---- internals --------------------------------------------------------

    def _check_alive(self):
        if self.exit_reason is not None:
            raise QubesDBError('qubesdb daemon exited: %s' % self.exit_reason)

    def _remove(self, path):
        if path.endswith('/'):
            victims = [k for k in self._db if k.startswith(path)]
        else:
            victims = [path] if path in self._db else []
        for k in victims:
            del self._db[k]
        return len(victims)

    def _exit(self, reason, fatal):
        with self._cond:
            if fatal:
                self.fatal = reason
            self.exit_reason = reason
            self._remote_connected = False
            self._cond.notify_all()
        self._close_conn()
        self.exited.set()

    def _close_conn(self):
        with self._lock:
            writer, conn = self._writer, self._conn
            self._writer = self._conn = None
        if writer is not None:
            writer.close()
        vchan.close_quietly(conn)

    def _run(self):
        try:
            while not self._stop.is_set():
                if self._lsock is None:
                    self._lsock = vchan.listen_unix(self.path)
                conn = vchan.accept_one(self._lsock, self._stop)
                vchan.close_quietly(self._lsock)
                self._lsock = None
                if conn is None:
                    return
                with self._cond:
                    self.connections += 1
                    self._conn = conn
                    self._writer = vchan.Writer(conn, 'qubesdb-writer-%d' % self.vm_domid)
                    self._remote_connected = False
                try:
                    self._serve(conn)
                except vchan.Stopped:
                    return
                except vchan.PeerClosed:
                    with self._cond:
                        was_connected = self._remote_connected
                        self._remote_connected = False
                        self._cond.notify_all()
                    self._close_conn()
                    if not was_connected:
                        self._exit('vchan closed before the VM synced (domain presumed dead)',
                                   fatal=False)
                        return
                    continue    # upstream: reconnect, wait for a new MULTIREAD
                except _Fatal as e:
                    self._exit(str(e), fatal=True)
                    return
        finally:
            if not self.exited.is_set() and self._stop.is_set():
                with self._cond:
                    if self.exit_reason is None:
                        self.exit_reason = 'stopped'
                    self._cond.notify_all()
                self.exited.set()

    def _reply(self, msg_type, path, data=b''):
        self._writer.send(pack(msg_type, path, data))

    def _serve(self, conn):
        while True:
            hdr = vchan.recv_exact(conn, HDR_LEN, self._stop)
            msg_type, path_raw, data_len = unpack_header(hdr)
            name = TYPE_NAMES.get(msg_type, str(msg_type))
            if msg_type not in VCHAN_TYPES:
                raise _Fatal('invalid message from VM: type %s not allowed on vchan' % name)
            # upstream forces path[63] = 0, then verifies the string
            nul = path_raw.find(b'\0')
            if nul < 0:
                self.warnings.append('%s path not NUL-terminated; truncated to 63 chars' % name)
                nul = MAX_PATH - 1
            path_b = path_raw[:nul]
            if not path_is_valid(path_b):
                raise _Fatal('invalid message from VM: bad path %r in %s' % (path_b, name))
            if data_len >= MAX_DATA:
                raise _Fatal('invalid message from VM: data_len %d >= %d in %s'
                             % (data_len, MAX_DATA, name))
            data = vchan.recv_exact(conn, data_len, self._stop) if data_len else b''
            path = path_b.decode('ascii')
            with self._cond:
                self._dispatch(msg_type, path, data)
                self._cond.notify_all()

    def _dispatch(self, msg_type, path, data):
        if msg_type == CMD_WRITE:
            if b'\0' in data:
                self.errors_sent.append((RESP_ERROR, path))
                self._reply(RESP_ERROR, path)
                return
            if not _key_is_storable(path):
                self._reply(RESP_ERROR, path)
                raise _Fatal('failed to write path %r from VM' % path)
            self._db[path] = data
            self.vm_writes.append((path, _as_str(data)))
            self._reply(RESP_OK, path)
        elif msg_type == CMD_MULTIREAD:
            if self._remote_connected:
                self._reply(RESP_ERROR, path)
                raise _Fatal('spurious CMD_MULTIREAD from VM: only one per connection')
            if data:
                self.errors_sent.append((RESP_ERROR, path))
                self._reply(RESP_ERROR, path)
                return
            self._dump(path)
            self._remote_connected = True
            self.syncs += 1
        elif msg_type == CMD_RM:
            if data:
                self.errors_sent.append((RESP_ERROR, path))
                self._reply(RESP_ERROR, path)
                return
            if not path or not self._remove(path):
                self._reply(RESP_ERROR_NOENT, path)
                raise _Fatal('CMD_RM from VM for missing path %r (database desync)' % path)
            self.vm_rms.append(path)
            self._reply(RESP_OK, path)
        elif msg_type == RESP_OK:
            self.vm_responses.append((RESP_OK, path))
        elif msg_type == RESP_ERROR:
            if data:
                raise _Fatal('RESP_ERROR from VM carries data')
            self.vm_responses.append((RESP_ERROR, path))
        elif msg_type == RESP_MULTIREAD:
            raise _Fatal('spurious RESP_MULTIREAD from VM (dom0 never requests a sync)')

    def _dump(self, prefix):
        """handle_multiread: whole DB in reverse sorted order; a prefix in order."""
        keys = sorted(self._db, key=lambda k: k.encode())
        if prefix:
            keys = [k for k in keys if k.startswith(prefix)]
        else:
            keys.reverse()
        for k in keys:
            self._writer.send(pack(RESP_MULTIREAD, k, self._db[k]))
        self._writer.send(pack(RESP_MULTIREAD))
