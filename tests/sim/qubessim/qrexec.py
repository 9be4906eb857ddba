"""dom0's qrexec-daemon and qrexec-client for one VM (qubes-protocols.md §3).

Control channel: the VM agent is the vchan server on port 512; we connect as
the client to ``vchan.<vm>.0.512.sock``, read the agent's HELLO (type 0x300,
len 4, version >= 2) and answer. What we answer is configurable: a protocol-2
daemon (R4.0) sends its own version; current daemons echo the agent's
peer_info unchanged (§3.3). The negotiated version is min(agent, ours).

A service call (`call`) allocates the lowest free data port >= 513, listens on
``vchan.0.<vm>.<port>.sock`` as the data server (dom0 qrexec-client), sends
MSG_EXEC_CMDLINE / MSG_JUST_EXEC {connect_domain 0, connect_port, cmdline\\0},
accepts the agent, sends HELLO first, reads the agent's HELLO, sends stdin
(chunks <= negotiated maximum, then an empty STDIN = EOF), and collects
STDOUT/STDERR until EXIT_CODE. The port is released when the agent sends
MSG_CONNECTION_TERMINATED {0, port} on the control channel.

Every protocol violation by the agent raises QrexecProtocolError.
"""

import struct
import threading
import time

from . import vchan

VCHAN_BASE_PORT = 512
VCHAN_BASE_DATA_PORT = 513
MAX_CLIENTS = 256

MSG_DATA_STDIN = 0x190
MSG_DATA_STDOUT = 0x191
MSG_DATA_STDERR = 0x192
MSG_DATA_EXIT_CODE = 0x193
MSG_EXEC_CMDLINE = 0x200
MSG_JUST_EXEC = 0x201
MSG_SERVICE_CONNECT = 0x202
MSG_SERVICE_REFUSED = 0x203
MSG_TRIGGER_SERVICE = 0x210
MSG_CONNECTION_TERMINATED = 0x211
MSG_TRIGGER_SERVICE3 = 0x212
MSG_TRIGGER_SERVICE4 = 0x213
MSG_HELLO = 0x300

MAX_DATA_CHUNK_V2 = 4096
MAX_DATA_CHUNK_V3 = 65536
MAX_QREXEC_CMD_LEN = 65535
MIN_VERSION = 2

HDR = struct.Struct('<II')


class QrexecError(Exception):
    pass


class QrexecProtocolError(QrexecError):
    pass


def pack(msg_type, body=b''):
    return HDR.pack(msg_type, len(body)) + body


def hello(version):
    return pack(MSG_HELLO, struct.pack('<I', version))


def exec_params(connect_domain, connect_port, cmdline=None):
    body = struct.pack('<II', connect_domain, connect_port)
    if cmdline is not None:
        if isinstance(cmdline, str):
            cmdline = cmdline.encode()
        body += cmdline + b'\0'
    return body


def max_chunk(version):
    return MAX_DATA_CHUNK_V2 if version < 3 else MAX_DATA_CHUNK_V3


def read_msg(sock, stop, deadline, max_body):
    hdr = vchan.recv_exact(sock, HDR.size, stop, deadline)
    msg_type, length = HDR.unpack(hdr)
    if length > max_body:
        raise QrexecProtocolError('message 0x%x body %d > %d' % (msg_type, length, max_body))
    body = vchan.recv_exact(sock, length, stop, deadline) if length else b''
    return msg_type, body


def read_hello(sock, stop, deadline):
    """Read and check a HELLO: type 0x300, len exactly 4, version >= 2."""
    hdr = vchan.recv_exact(sock, HDR.size, stop, deadline)
    msg_type, length = HDR.unpack(hdr)
    if msg_type != MSG_HELLO or length != 4:
        raise QrexecProtocolError('invalid HELLO: type 0x%x len %d' % (msg_type, length))
    (version,) = struct.unpack('<I', vchan.recv_exact(sock, 4, stop, deadline))
    if version < MIN_VERSION:
        raise QrexecProtocolError('incompatible peer protocol version %d' % version)
    return version


class CallResult:
    """Outcome of one service call. Unpacks as (exit_code, stdout, stderr)."""

    def __init__(self, port, cmdline):
        self.port = port
        self.cmdline = cmdline
        self.exit_code = None
        self.stdout = b''
        self.stderr = b''
        self.stdout_eof = False
        self.stderr_eof = False
        self.messages = []            # [(type, body)] received on the data channel, in order
        self.agent_version = None     # version in the agent's data HELLO
        self.version = None           # negotiated data-channel version
        self.connection_terminated = False
        self.stdin_refused = False      # the agent closed before taking all of stdin

    def __iter__(self):
        return iter((self.exit_code, self.stdout, self.stderr))

    def __repr__(self):
        return ('CallResult(port=%d, exit_code=%r, stdout=%r, stderr=%r, terminated=%r)'
                % (self.port, self.exit_code, self.stdout, self.stderr,
                   self.connection_terminated))


class QrexecDaemon:
    """Per-VM qrexec-daemon (+ the qrexec-client side of calls).

    version: our protocol version (2, 3 or 4).
    hello_reply: 'own' (send our version, R4.0 daemon) or 'echo' (echo the
    agent's peer_info, current daemons); default 'own' for v2, 'echo' above.
    """

    def __init__(self, sock_dir, vm_domid, version=3, hello_reply=None, default_user='user'):
        if version < MIN_VERSION:
            raise ValueError('version must be >= 2')
        self.sock_dir = str(sock_dir)
        self.vm_domid = int(vm_domid)
        self.version = version
        self.hello_reply = hello_reply or ('own' if version == 2 else 'echo')
        if self.hello_reply not in ('own', 'echo'):
            raise ValueError("hello_reply must be 'own' or 'echo'")
        self.default_user = default_user
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._ctrl = None
        self._reader = None
        self._used_ports = set()
        self._terminated = {}          # port -> count of CONNECTION_TERMINATED seen
        # observable state
        self.agent_version = None      # version the agent announced on the control channel
        self.protocol_version = None   # negotiated control-channel version
        self.control_messages = []     # [(type, body)] received after the handshake
        self.control_error = None      # str: protocol error on the control channel
        self.agent_closed = threading.Event()

    # ---- lifecycle -------------------------------------------------------

    def connect(self, timeout=10.0):
        """Connect to the agent's control vchan and do the HELLO exchange.
        Returns the negotiated version."""
        path = vchan.vchan_path(self.sock_dir, self.vm_domid, 0, VCHAN_BASE_PORT)
        deadline = time.monotonic() + timeout
        sock = vchan.connect_unix(path, timeout, self._stop)
        try:
            agent_version = read_hello(sock, self._stop, deadline)
            reply = agent_version if self.hello_reply == 'echo' else self.version
            vchan.send_all(sock, hello(reply))
        except BaseException:
            vchan.close_quietly(sock)
            raise
        self.agent_version = agent_version
        self.protocol_version = min(agent_version, self.version)
        self._ctrl = sock
        self._ctrl_lock = threading.Lock()
        self._reader = threading.Thread(target=self._control_loop, name='qrexec-ctrl-%d'
                                        % self.vm_domid, daemon=True)
        self._reader.start()
        return self.protocol_version

    def close(self, timeout=5.0):
        """Close the control channel (the agent sees EOF, as if qrexec-daemon died)."""
        self._stop.set()
        vchan.close_quietly(self._ctrl)
        if self._reader is not None:
            self._reader.join(timeout)
            if self._reader.is_alive():
                raise RuntimeError('qrexec control reader did not stop')

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- calls -----------------------------------------------------------

    def send_control(self, msg_type, body=b''):
        """Send a raw control message (tests of the agent's validation)."""
        if self._ctrl is None:
            raise QrexecError('not connected')
        with self._ctrl_lock:
            vchan.send_all(self._ctrl, pack(msg_type, body))

    def call(self, cmdline, stdin=b'', timeout=10.0, just_exec=False, connect_timeout=10.0,
             wait_terminated=2.0):
        """Run cmdline (e.g. 'DEFAULT:QUBESRPC qubes.WaitForSession dom0') in the VM.

        'DEFAULT:' is replaced by the default user as qrexec-daemon does.
        Returns a CallResult (unpacks as (exit_code, stdout, stderr)); waits up to
        wait_terminated seconds for MSG_CONNECTION_TERMINATED (result flag)."""
        if self._ctrl is None:
            raise QrexecError('not connected')
        if isinstance(cmdline, bytes):
            cmdline = cmdline.decode()
        if cmdline.startswith('DEFAULT:'):
            cmdline = self.default_user + ':' + cmdline[len('DEFAULT:'):]
        if isinstance(stdin, str):
            stdin = stdin.encode()
        if len(cmdline.encode()) + 1 > MAX_QREXEC_CMD_LEN:
            raise ValueError('command line too long')
        port = self._allocate_port()
        result = CallResult(port, cmdline)
        deadline = time.monotonic() + timeout
        path = vchan.vchan_path(self.sock_dir, 0, self.vm_domid, port)
        lsock = vchan.listen_unix(path)
        data = None
        try:
            with self._cond:
                seen = self._terminated.get(port, 0)
            self.send_control(MSG_JUST_EXEC if just_exec else MSG_EXEC_CMDLINE,
                              exec_params(0, port, cmdline))
            data = vchan.accept_one(lsock, self._stop,
                                    time.monotonic() + min(connect_timeout, timeout))
            if data is None:
                raise TimeoutError('agent did not connect to data port %d' % port)
            vchan.close_quietly(lsock)
            lsock = None
            # data server (qrexec-client) sends its HELLO first, then reads
            vchan.send_all(data, hello(self.version))
            result.agent_version = read_hello(data, self._stop, deadline)
            result.version = min(result.agent_version, self.version)
            chunk = max_chunk(result.version)
            try:
                for off in range(0, len(stdin), chunk):
                    vchan.send_all(data, pack(MSG_DATA_STDIN, stdin[off:off + chunk]))
                vchan.send_all(data, pack(MSG_DATA_STDIN))
            except vchan.PeerClosed:
                # A service that does not read its input may finish and close
                # before all of it is sent (qrexec-client ignores EPIPE too);
                # what it wrote before closing is still readable.
                result.stdin_refused = True
            self._collect(data, result, chunk, deadline)
        finally:
            vchan.close_quietly(lsock)
            vchan.close_quietly(data)
        result.connection_terminated = self._wait_terminated(port, seen, wait_terminated)
        return result

    def run_service(self, service, arg=None, source='dom0', user='DEFAULT', stdin=b'',
                    timeout=10.0, **kw):
        """qubesd's run_service: '<user>:QUBESRPC <service>[+arg] <source>'."""
        desc = service if arg is None else '%s+%s' % (service, arg)
        return self.call('%s:QUBESRPC %s %s' % (user, desc, source), stdin=stdin,
                         timeout=timeout, **kw)

    # ---- internals -------------------------------------------------------

    def _collect(self, data, result, chunk, deadline):
        while True:
            msg_type, body = read_msg(data, self._stop, deadline, chunk)
            result.messages.append((msg_type, body))
            if msg_type == MSG_DATA_STDOUT:
                if result.stdout_eof and body:
                    raise QrexecProtocolError('STDOUT data after STDOUT EOF')
                if body:
                    result.stdout += body
                else:
                    result.stdout_eof = True
            elif msg_type == MSG_DATA_STDERR:
                if result.stderr_eof and body:
                    raise QrexecProtocolError('STDERR data after STDERR EOF')
                if body:
                    result.stderr += body
                else:
                    result.stderr_eof = True
            elif msg_type == MSG_DATA_EXIT_CODE:
                # a short body reads as 255 (libqrexec remote.c)
                result.exit_code = struct.unpack('<i', body[:4])[0] if len(body) >= 4 else 255
                return
            else:
                raise QrexecProtocolError('unexpected data-channel message 0x%x' % msg_type)

    def _allocate_port(self):
        with self._cond:
            for i in range(MAX_CLIENTS):
                port = VCHAN_BASE_DATA_PORT + i
                if port not in self._used_ports:
                    self._used_ports.add(port)
                    return port
        raise QrexecError('no free vchan port')

    def _wait_terminated(self, port, seen, timeout):
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._terminated.get(port, 0) <= seen:
                left = deadline - time.monotonic()
                if left <= 0 or self.agent_closed.is_set():
                    return False
                self._cond.wait(min(left, 0.2))
            return True

    @property
    def ports_in_use(self):
        with self._lock:
            return sorted(self._used_ports)

    def _control_loop(self):
        try:
            while True:
                msg_type, body = read_msg(self._ctrl, self._stop, None, MAX_QREXEC_CMD_LEN + 8)
                with self._cond:
                    self.control_messages.append((msg_type, body))
                    if msg_type == MSG_CONNECTION_TERMINATED:
                        if len(body) != 8:
                            raise QrexecProtocolError('CONNECTION_TERMINATED len %d' % len(body))
                        domain, port = struct.unpack('<II', body)
                        if domain == 0:
                            self._used_ports.discard(port)
                            self._terminated[port] = self._terminated.get(port, 0) + 1
                    self._cond.notify_all()
        except (vchan.PeerClosed, vchan.Stopped):
            pass
        except QrexecProtocolError as e:
            self.control_error = str(e)
        except OSError as e:
            if not self._stop.is_set():
                self.control_error = 'control channel error: %s' % e
        finally:
            with self._cond:
                self._cond.notify_all()
            self.agent_closed.set()
