"""A small xenstored over one Unix socket (xen-platform.md §6).

Messages are ``struct xsd_sockmsg`` (type, req_id, tx_id, len: little-endian
u32) + payload (<= 4096 bytes; a longer one kills the connection, as
xenstored does). Implemented: READ, WRITE, MKDIR, RM (recursive), DIRECTORY,
GET_DOMAIN_PATH, WATCH, UNWATCH, TRANSACTION_START/END, GET_PERMS/SET_PERMS
(permission-free: accepted, not enforced), RESET_WATCHES. Errors are XS_ERROR
with the errno name.

Each connection belongs to a domain (``domid`` given to the daemon, the
firewall's): relative paths are relative to /local/domain/<domid>, and a watch
registered with a relative path reports relative event paths.

Watch semantics (§6.4): a registration fires once immediately (after the OK
reply) with the watched path; then every change at or below the watched path
fires with the changed path; removing a node also fires watches registered
below it (with their own path), as C xenstored does. Changes made inside a
transaction fire on commit only.

Transactions: snapshot of the store at START; operations inside see the
snapshot plus their own changes; END "T" fails with EAGAIN if any node the
transaction read or wrote was changed by someone else since START (or when
EAGAIN injection is armed), else the recorded operations are replayed.

The Python API (write/read/rm/mkdir/directory/...) acts as dom0/libxl.
"""

import struct
import threading
import time

from . import vchan

XS_CONTROL = 0
XS_DIRECTORY = 1
XS_READ = 2
XS_GET_PERMS = 3
XS_WATCH = 4
XS_UNWATCH = 5
XS_TRANSACTION_START = 6
XS_TRANSACTION_END = 7
XS_INTRODUCE = 8
XS_RELEASE = 9
XS_GET_DOMAIN_PATH = 10
XS_WRITE = 11
XS_MKDIR = 12
XS_RM = 13
XS_SET_PERMS = 14
XS_WATCH_EVENT = 15
XS_ERROR = 16
XS_IS_DOMAIN_INTRODUCED = 17
XS_RESUME = 18
XS_SET_TARGET = 19
XS_RESET_WATCHES = 21
XS_DIRECTORY_PART = 22

HDR = struct.Struct('<IIII')
PAYLOAD_MAX = 4096
ABS_PATH_MAX = 3072
REL_PATH_MAX = 2048
MAX_WATCHES = 128          # C xenstored per-domain quota
MAX_TRANSACTIONS = 10

_PATH_CHARS = frozenset('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-/_@')


class XsError(Exception):
    def __init__(self, name):
        super().__init__(name)
        self.name = name


def pack(msg_type, payload=b'', req_id=0, tx_id=0):
    if isinstance(payload, str):
        payload = payload.encode()
    return HDR.pack(msg_type, req_id, tx_id, len(payload)) + payload


def _parent(path):
    if path == '/':
        return None
    p = path.rsplit('/', 1)[0]
    return p or '/'


def _is_at_or_below(path, top):
    return path == top or top == '/' or path.startswith(top + '/')


class _Store:
    """Flat dict path -> bytes; every node's parent exists. Insertion order is
    the child order returned by DIRECTORY."""

    def __init__(self, nodes=None):
        self.nodes = dict(nodes) if nodes is not None else {'/': b''}

    def copy(self):
        return _Store(self.nodes)

    def read(self, path):
        if path not in self.nodes:
            raise XsError('ENOENT')
        return self.nodes[path]

    def children(self, path):
        if path not in self.nodes:
            raise XsError('ENOENT')
        prefix = '/' if path == '/' else path + '/'
        return [p[len(prefix):] for p in self.nodes
                if p != path and p.startswith(prefix) and '/' not in p[len(prefix):]]

    def write(self, path, value):
        """Returns the list of created-or-modified paths (parents created empty)."""
        changed = []
        missing = []
        p = path
        while p is not None and p not in self.nodes:
            missing.append(p)
            p = _parent(p)
        for p in reversed(missing):
            self.nodes[p] = b''
            changed.append(p)
        if value is not None:
            self.nodes[path] = value
            if path not in changed:
                changed.append(path)
        return changed

    def rm(self, path):
        """Remove a subtree. Absent node: OK if parent exists, else ENOENT."""
        if path == '/':
            raise XsError('EINVAL')
        if path not in self.nodes:
            if _parent(path) not in self.nodes:
                raise XsError('ENOENT')
            return []
        victims = [p for p in self.nodes if _is_at_or_below(p, path)]
        for p in victims:
            del self.nodes[p]
        return victims


class _Transaction:
    def __init__(self, tx_id, store, seq):
        self.id = tx_id
        self.store = store      # private copy
        self.start_seq = seq
        self.accessed = set()   # paths read or written
        self.ops = []           # (op, path, value) replayed on commit


class _Watch:
    def __init__(self, path, token, relative):
        self.path = path          # absolute (or @special)
        self.token = token
        self.relative = relative


class _Conn:
    def __init__(self, daemon, sock, conn_id, domid):
        self.daemon = daemon
        self.sock = sock
        self.id = conn_id
        self.domid = domid
        self.watches = []         # [_Watch]
        self.transactions = {}    # tx_id -> _Transaction
        self.writer = vchan.Writer(sock, 'xs-writer-%d' % conn_id)
        self.closed_reason = None
        self.thread = None

    def send(self, msg_type, payload, req_id=0, tx_id=0):
        self.writer.send(pack(msg_type, payload, req_id, tx_id))


class XenStoreDaemon:
    """xenstored stand-in. Thread-safe; start()/stop() or context manager."""

    def __init__(self, socket_path, domid, entries=()):
        self.socket_path = str(socket_path)
        self.domid = int(domid)
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._store = _Store()
        self._seq = 0
        self._changelog = []        # (seq, path) kept while transactions are open
        self._conns = {}
        self._next_conn = 1
        self._next_tx = 1
        self._stop = threading.Event()
        self._thread = None
        self._lsock = None
        self.inject_eagain = 0      # > 0: that many next commits fail with EAGAIN
        self.max_watches = MAX_WATCHES
        self.closed_connections = []  # [(conn_id, reason)]
        self.requests = []            # [(conn_id, type, payload)] log of every request
        self.log_requests = True
        for path, value in entries:
            self.write(path, value)

    # ---- lifecycle -------------------------------------------------------

    def start(self):
        self._lsock = vchan.listen_unix(self.socket_path)
        self._thread = threading.Thread(target=self._accept_loop, name='xenstored', daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout=5.0):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._lock:
            conns = list(self._conns.values())
        for c in conns:
            self._drop_conn(c, 'daemon stopped')
        for c in conns:
            if c.thread is not None and c.thread is not threading.current_thread():
                c.thread.join(timeout)
                if c.thread.is_alive():
                    raise RuntimeError('xenstore connection thread did not stop')
        vchan.close_quietly(self._lsock)
        self._lsock = None

    def __enter__(self):
        if self._thread is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    # ---- dom0 / libxl API -------------------------------------------------

    def write(self, path, value=''):
        self.write_many([(path, value)])

    def write_many(self, items):
        """Write several keys atomically (one libxl transaction): all changes
        are applied, then watches fire."""
        with self._cond:
            changed = []
            for path, value in items:
                path = self._abs_api(path)
                changed += self._store.write(path, _b(value))
            self._changed(changed)

    def mkdir(self, path):
        with self._cond:
            self._changed(self._store.write(self._abs_api(path), None))

    def rm(self, path):
        """Recursive remove; returns True if something was removed."""
        with self._cond:
            try:
                removed = self._store.rm(self._abs_api(path))
            except XsError:
                return False
            self._changed(removed, removal_top=self._abs_api(path) if removed else None)
            return bool(removed)

    def read(self, path, default=None):
        v = self.read_bytes(path)
        return default if v is None else v.decode('utf-8', 'surrogateescape')

    def read_bytes(self, path):
        with self._lock:
            return self._store.nodes.get(self._abs_api(path))

    def exists(self, path):
        with self._lock:
            return self._abs_api(path) in self._store.nodes

    def directory(self, path):
        with self._lock:
            try:
                return self._store.children(self._abs_api(path))
            except XsError:
                return None

    def dump(self, prefix='/'):
        """{path: value str} of every node at or below prefix."""
        prefix = self._abs_api(prefix)
        with self._lock:
            return {p: v.decode('utf-8', 'surrogateescape')
                    for p, v in self._store.nodes.items() if _is_at_or_below(p, prefix)}

    def fire_special(self, name):
        """Fire watches on @introduceDomain / @releaseDomain."""
        with self._cond:
            self._fire(name, None)

    def wait_for(self, path, predicate=None, timeout=10.0):
        """Wait until path exists and predicate(value str) holds; returns value."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                v = self.read(path)
                if v is not None and (predicate is None or predicate(v)):
                    return v
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError('xenstore %s: condition not met in %.1fs (value %r)'
                                       % (path, timeout, v))
                self._cond.wait(min(left, 0.2))

    def wait_until(self, condition, timeout=10.0, what='condition'):
        """Wait until condition() (called with the store locked) is true."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                result = condition()
                if result:
                    return result
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError('xenstore: %s not met in %.1fs' % (what, timeout))
                self._cond.wait(min(left, 0.2))

    def wait_for_absent(self, path, timeout=10.0):
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.exists(path):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError('xenstore %s still present after %.1fs' % (path, timeout))
                self._cond.wait(min(left, 0.2))

    # ---- observation for tests -------------------------------------------

    def connection_ids(self):
        with self._lock:
            return sorted(self._conns)

    def watch_count(self, conn_id=None):
        """Live watches of one connection, or of all connections."""
        with self._lock:
            if conn_id is not None:
                c = self._conns.get(conn_id)
                return len(c.watches) if c else 0
            return sum(len(c.watches) for c in self._conns.values())

    def watches(self, conn_id=None):
        """[(conn_id, path as registered-absolute, token)]"""
        with self._lock:
            return [(c.id, w.path, w.token) for c in self._conns.values()
                    if conn_id is None or c.id == conn_id for w in c.watches]

    def transaction_count(self, conn_id=None):
        with self._lock:
            return sum(len(c.transactions) for c in self._conns.values()
                       if conn_id is None or c.id == conn_id)

    def wait_connections(self, n=1, timeout=10.0):
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._conns) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError('only %d xenstore connections' % len(self._conns))
                self._cond.wait(min(left, 0.2))

    # ---- internals -------------------------------------------------------

    def _abs_api(self, path):
        if path.startswith('/'):
            return path.rstrip('/') or '/'
        return '/local/domain/%d/%s' % (self.domid, path.rstrip('/'))

    def _changed(self, paths, removal_top=None):
        for p in paths:
            self._seq += 1
            if any(c.transactions for c in self._conns.values()):
                self._changelog.append((self._seq, p))
        if removal_top is not None:
            # one event for the removed node; watches below it fire with their own path
            self._fire(removal_top, None, recursive=True)
        else:
            for p in paths:
                self._fire(p, None)
        self._cond.notify_all()

    def _fire(self, path, _unused, recursive=False):
        """Queue WATCH_EVENTs for a change of `path` on every connection."""
        for c in self._conns.values():
            for w in c.watches:
                if path.startswith('@') or w.path.startswith('@'):
                    hit = path == w.path
                    ev = path
                elif _is_at_or_below(path, w.path):
                    hit, ev = True, path
                elif recursive and _is_at_or_below(w.path, path):
                    hit, ev = True, w.path
                else:
                    hit = False
                if hit:
                    c.send(XS_WATCH_EVENT, self._event_path(c, w, ev).encode() + b'\0'
                           + w.token + b'\0')

    def _event_path(self, conn, watch, path):
        if watch.relative:
            home = '/local/domain/%d/' % conn.domid
            if path.startswith(home):
                return path[len(home):]
        return path

    def _accept_loop(self):
        while not self._stop.is_set():
            sock = vchan.accept_one(self._lsock, self._stop)
            if sock is None:
                return
            with self._cond:
                conn = _Conn(self, sock, self._next_conn, self.domid)
                self._next_conn += 1
                self._conns[conn.id] = conn
                conn.thread = threading.Thread(target=self._serve, args=(conn,),
                                               name='xs-conn-%d' % conn.id, daemon=True)
                self._cond.notify_all()
            conn.thread.start()

    def _drop_conn(self, conn, reason):
        with self._cond:
            if conn.id not in self._conns:
                return
            del self._conns[conn.id]
            conn.closed_reason = reason
            self.closed_connections.append((conn.id, reason))
            self._cond.notify_all()
        conn.writer.close()
        vchan.close_quietly(conn.sock)

    def _serve(self, conn):
        try:
            while True:
                hdr = vchan.recv_exact(conn.sock, HDR.size, self._stop)
                msg_type, req_id, tx_id, length = HDR.unpack(hdr)
                if length > PAYLOAD_MAX:
                    self._drop_conn(conn, 'payload length %d > %d' % (length, PAYLOAD_MAX))
                    return
                payload = vchan.recv_exact(conn.sock, length, self._stop) if length else b''
                with self._cond:
                    if conn.id not in self._conns:
                        return
                    if self.log_requests:
                        self.requests.append((conn.id, msg_type, payload))
                    try:
                        reply = self._handle(conn, msg_type, tx_id, payload)
                    except XsError as e:
                        conn.send(XS_ERROR, e.name.encode() + b'\0', req_id, tx_id)
                    else:
                        if reply is not None:
                            body, after = reply
                            conn.send(msg_type, body, req_id, tx_id)
                            if after is not None:
                                after()
                    self._cond.notify_all()
        except (vchan.PeerClosed, vchan.Stopped):
            pass
        except Exception as e:  # a bug in the daemon must not hang the test
            self._drop_conn(conn, 'daemon error: %r' % (e,))
            raise
        self._drop_conn(conn, 'peer closed')

    # -- request handling (called with the lock held) --

    def _args(self, payload, n):
        """Split NUL-terminated strings; exactly n of them."""
        if not payload.endswith(b'\0'):
            raise XsError('EINVAL')
        parts = payload[:-1].split(b'\0')
        if len(parts) != n:
            raise XsError('EINVAL')
        return parts

    def _path(self, conn, raw):
        try:
            path = raw.decode('ascii')
        except UnicodeDecodeError:
            raise XsError('EINVAL')
        if not path or any(ch not in _PATH_CHARS for ch in path):
            raise XsError('EINVAL')
        if path.startswith('@'):
            raise XsError('EINVAL')
        if not path.startswith('/'):
            if len(path) > REL_PATH_MAX:
                raise XsError('EINVAL')
            path = '/local/domain/%d/%s' % (conn.domid, path)
        if len(path) > ABS_PATH_MAX:
            raise XsError('EINVAL')
        if '//' in path or (path.endswith('/') and path != '/'):
            raise XsError('EINVAL')
        return path

    def _tx(self, conn, tx_id):
        if tx_id == 0:
            return None
        tx = conn.transactions.get(tx_id)
        if tx is None:
            raise XsError('ENOENT')
        return tx

    def _handle(self, conn, t, tx_id, payload):
        ok = (b'OK\0', None)
        if t == XS_READ:
            path = self._path(conn, self._args(payload, 1)[0])
            tx = self._tx(conn, tx_id)
            if tx:
                tx.accessed.add(path)
                return tx.store.read(path), None
            return self._store.read(path), None
        if t == XS_DIRECTORY:
            path = self._path(conn, self._args(payload, 1)[0])
            tx = self._tx(conn, tx_id)
            store = tx.store if tx else self._store
            if tx:
                tx.accessed.add(path)
            names = store.children(path)
            return b''.join(n.encode() + b'\0' for n in names), None
        if t == XS_WRITE:
            nul = payload.find(b'\0')
            if nul < 0:
                raise XsError('EINVAL')
            path = self._path(conn, payload[:nul])
            value = payload[nul + 1:]
            tx = self._tx(conn, tx_id)
            if tx:
                for p in tx.store.write(path, value):
                    tx.accessed.add(p)
                tx.accessed.add(path)
                tx.ops.append(('write', path, value))
            else:
                self._changed(self._store.write(path, value))
            return ok
        if t == XS_MKDIR:
            path = self._path(conn, self._args(payload, 1)[0])
            tx = self._tx(conn, tx_id)
            if tx:
                tx.accessed.update(tx.store.write(path, None))
                tx.accessed.add(path)
                tx.ops.append(('mkdir', path, None))
            else:
                self._changed(self._store.write(path, None))
            return ok
        if t == XS_RM:
            path = self._path(conn, self._args(payload, 1)[0])
            tx = self._tx(conn, tx_id)
            if tx:
                removed = tx.store.rm(path)
                tx.accessed.add(path)
                tx.accessed.update(removed)
                tx.ops.append(('rm', path, None))
            else:
                removed = self._store.rm(path)
                if removed:
                    self._changed(removed, removal_top=path)
            return ok
        if t == XS_GET_DOMAIN_PATH:
            arg = payload.rstrip(b'\0')
            if not arg:
                domid = conn.domid      # lenient: empty argument = own domain
            else:
                try:
                    domid = int(arg.decode('ascii'), 10)
                except (UnicodeDecodeError, ValueError):
                    raise XsError('EINVAL')
            return ('/local/domain/%d' % domid).encode() + b'\0', None
        if t == XS_WATCH:
            raw_path, token = self._args(payload, 2)
            if raw_path.startswith(b'@'):
                path = raw_path.decode('ascii', 'replace')
                relative = False
            else:
                path = self._path(conn, raw_path)
                relative = not raw_path.startswith(b'/')
            if any(w.path == path and w.token == token for w in conn.watches):
                raise XsError('EEXIST')
            if len(conn.watches) >= self.max_watches:
                raise XsError('E2BIG')
            w = _Watch(path, token, relative)
            conn.watches.append(w)

            def initial_event():
                ev = self._event_path(conn, w, path)
                conn.send(XS_WATCH_EVENT, ev.encode() + b'\0' + token + b'\0')
            return b'OK\0', initial_event
        if t == XS_UNWATCH:
            raw_path, token = self._args(payload, 2)
            if raw_path.startswith(b'@'):
                path = raw_path.decode('ascii', 'replace')
            else:
                path = self._path(conn, raw_path)
            for i, w in enumerate(conn.watches):
                if w.path == path and w.token == token:
                    del conn.watches[i]
                    return ok
            raise XsError('ENOENT')
        if t == XS_TRANSACTION_START:
            if tx_id != 0:
                raise XsError('EBUSY')
            if len(conn.transactions) >= MAX_TRANSACTIONS:
                raise XsError('ENOSPC')
            tx = _Transaction(self._next_tx, self._store.copy(), self._seq)
            self._next_tx += 1
            conn.transactions[tx.id] = tx
            return str(tx.id).encode() + b'\0', None
        if t == XS_TRANSACTION_END:
            arg = self._args(payload, 1)[0]
            if arg not in (b'T', b'F'):
                raise XsError('EINVAL')
            tx = self._tx(conn, tx_id)
            if tx is None:
                raise XsError('EINVAL')
            conflict = any(seq > tx.start_seq and (p in tx.accessed or _parent(p) in tx.accessed)
                           for seq, p in self._changelog)
            del conn.transactions[tx.id]
            self._trim_changelog()
            if arg == b'F':
                return ok
            if self.inject_eagain > 0:
                self.inject_eagain -= 1
                raise XsError('EAGAIN')
            if conflict:
                raise XsError('EAGAIN')
            for op, path, value in tx.ops:
                if op == 'write':
                    self._changed(self._store.write(path, value))
                elif op == 'mkdir':
                    self._changed(self._store.write(path, None))
                else:
                    try:
                        removed = self._store.rm(path)
                    except XsError:
                        removed = []
                    if removed:
                        self._changed(removed, removal_top=path)
            return ok
        if t == XS_GET_PERMS:
            path = self._path(conn, self._args(payload, 1)[0])
            tx = self._tx(conn, tx_id)
            (tx.store if tx else self._store).read(path)
            return ('n%d\0' % conn.domid).encode(), None
        if t == XS_SET_PERMS:
            nul = payload.find(b'\0')
            if nul < 0:
                raise XsError('EINVAL')
            path = self._path(conn, payload[:nul])
            tx = self._tx(conn, tx_id)
            (tx.store if tx else self._store).read(path)
            return ok
        if t == XS_RESET_WATCHES:
            conn.watches.clear()
            conn.transactions.clear()
            self._trim_changelog()
            return ok
        if t in (XS_WATCH_EVENT, XS_ERROR):
            raise XsError('EINVAL')
        if t in (XS_CONTROL, XS_INTRODUCE, XS_RELEASE, XS_IS_DOMAIN_INTRODUCED, XS_RESUME,
                 XS_SET_TARGET):
            raise XsError('EACCES')
        raise XsError('ENOSYS' if t == XS_DIRECTORY_PART else 'EINVAL')

    def _trim_changelog(self):
        if not any(c.transactions for c in self._conns.values()):
            self._changelog = []
        else:
            oldest = min(tx.start_seq for c in self._conns.values()
                         for tx in c.transactions.values())
            self._changelog = [e for e in self._changelog if e[0] > oldest]


def _b(value):
    if isinstance(value, bytes):
        return value
    return str(value).encode('utf-8', 'surrogateescape')
