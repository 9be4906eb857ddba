"""Socket vchan (qubes-core-vchan-socket compatible, spec qubes-protocols.md §1.7).

A vchan between server domain S and client domain C on port P is the Unix
stream socket ``<dir>/vchan.<S>.<C>.<P>.sock``: the server binds and accepts
exactly one connection; the client retries connect() on ENOENT/ECONNREFUSED.
The socket then carries the raw byte stream, no framing, no handshake.

Also holds the small blocking-I/O helpers shared by the daemons: every wait
has a deadline and checks a stop event, so threads always finish.
"""

import errno
import os
import queue
import socket
import threading
import time

POLL_INTERVAL = 0.05
UNIX_PATH_MAX = 107


class PeerClosed(Exception):
    """The peer closed the stream (EOF, ECONNRESET, EPIPE)."""


class Stopped(Exception):
    """Our own side is shutting down."""


def vchan_path(sock_dir, server_domid, client_domid, port):
    path = os.path.join(str(sock_dir), 'vchan.%d.%d.%d.sock' % (server_domid, client_domid, port))
    if len(path.encode()) > UNIX_PATH_MAX:
        raise ValueError('socket path too long for AF_UNIX: %s' % path)
    return path


def listen_unix(path):
    """Unlink a stale path, bind and listen (vchan server or xenstored socket)."""
    if len(str(path).encode()) > UNIX_PATH_MAX:
        raise ValueError('socket path too long for AF_UNIX: %s' % path)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.listen(8)
    s.settimeout(POLL_INTERVAL)
    return s


def accept_one(lsock, stop, deadline=None):
    """Accept one connection; None on stop or deadline."""
    while not stop.is_set():
        if deadline is not None and time.monotonic() >= deadline:
            return None
        try:
            conn, _ = lsock.accept()
        except socket.timeout:
            continue
        except OSError:
            return None
        conn.settimeout(POLL_INTERVAL)
        return conn
    return None


def connect_unix(path, timeout, stop=None):
    """Connect, retrying on ENOENT/ECONNREFUSED like the socket vchan client."""
    deadline = time.monotonic() + timeout
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(str(path))
            s.settimeout(POLL_INTERVAL)
            return s
        except (FileNotFoundError, ConnectionRefusedError):
            s.close()
        if stop is not None and stop.is_set():
            raise Stopped()
        if time.monotonic() >= deadline:
            raise TimeoutError('cannot connect to %s within %.1fs' % (path, timeout))
        time.sleep(0.01)


def recv_exact(sock, n, stop, deadline=None):
    """Read exactly n bytes from a socket with a short timeout set.

    Raises PeerClosed on EOF/reset, Stopped when stop is set, TimeoutError at
    the deadline (None = wait for ever, but stop is still honoured)."""
    buf = bytearray()
    while len(buf) < n:
        if stop is not None and stop.is_set():
            raise Stopped()
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError('read timed out (%d of %d bytes)' % (len(buf), n))
        try:
            chunk = sock.recv(n - len(buf))
        except socket.timeout:
            continue
        except OSError as e:
            if e.errno in (errno.ECONNRESET, errno.EPIPE, errno.EBADF, errno.ENOTCONN):
                raise PeerClosed(str(e))
            raise
        if not chunk:
            raise PeerClosed('EOF after %d of %d bytes' % (len(buf), n))
        buf += chunk
    return bytes(buf)


def send_all(sock, data, timeout=10.0):
    """sendall with a deadline (the socket has a short timeout)."""
    view = memoryview(data)
    deadline = time.monotonic() + timeout
    while view:
        try:
            sent = sock.send(view)
        except socket.timeout:
            if time.monotonic() >= deadline:
                raise TimeoutError('send timed out')
            continue
        except OSError as e:
            raise PeerClosed(str(e))
        view = view[sent:]


class Writer:
    """Per-connection writer thread fed by a queue.

    Daemon threads enqueue whole messages while holding their state lock and
    never block on a slow peer (a peer that stops reading while we hold a lock
    could otherwise deadlock the daemon)."""

    def __init__(self, sock, name, on_error=None):
        self._sock = sock
        self._q = queue.Queue()
        self._on_error = on_error
        self._t = threading.Thread(target=self._run, name=name, daemon=True)
        self._t.start()

    def send(self, data):
        self._q.put(bytes(data))

    def _run(self):
        while True:
            item = self._q.get()
            if item is None:
                return
            try:
                send_all(self._sock, item)
            except (PeerClosed, TimeoutError, OSError) as e:
                if self._on_error:
                    self._on_error(e)
                return

    def close(self, timeout=2.0):
        """Flush what is queued (bounded by timeout), then stop the thread."""
        self._q.put(None)
        self._t.join(timeout)


def close_quietly(sock):
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
