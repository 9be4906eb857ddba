"""Boots Xen 4.17 + the busybox dom0 under QEMU TCG and collects the serial
console (specs/xen-in-qemu.md §4: `-cpu max,-rdtscp`, Xen `smap=0`, no NIC).

The dom0 /init (scripts/xen-image) runs /xenworld/run.sh from the overlay
archive when `xenworld=1` is on its command line; run.sh reports on hvc0
with lines `XW <tag> <text>` and the machine powers itself off. Every serial
line is time-stamped on the host when it arrives.
"""

import gzip
import os
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field

QEMU = shutil.which('qemu-system-x86_64')
XEN_CMDLINE = ('console=com1 com1=115200,8n1 dom0_mem=512M,max:512M dom0_max_vcpus=2 '
               'smap=0 loglvl=warning guest_loglvl=none')
DOM0_CMDLINE = 'console=hvc0 quiet loglevel=3 xenworld=1'

# Signatures of the rare flakes of spec §6 (worth one whole-VM retry).
FLAKES = ('Triple fault', 'segfault', 'Segmentation fault', 'unable to XZ decompress',
          'XW guest-boot-stuck', 'Hardware Dom0 crashed', 'Kernel panic')


@dataclass(repr=False)
class BootResult:
    """What one boot printed; `lines` are (seconds since QEMU start, text)."""
    lines: list = field(default_factory=list)
    rc: int = None
    timed_out: bool = False
    wall: float = 0.0
    log_path: str = ''

    def __repr__(self):
        return '<boot rc=%s %d lines, log %s>' % (self.rc, len(self.lines), self.log_path)

    def markers(self, tag=None):
        """[(t, tag, rest)] of the `XW tag rest` lines, in order."""
        out = []
        for t, line in self.lines:
            i = line.find('XW ')
            if i < 0:
                continue
            parts = line[i + 3:].strip().split(' ', 1)
            if not parts or not parts[0]:
                continue
            if tag is None or parts[0] == tag:
                out.append((t, parts[0], parts[1] if len(parts) > 1 else ''))
        return out

    def marker(self, tag):
        """The text of the first `XW tag` line, or None."""
        m = self.markers(tag)
        return m[0][2] if m else None

    def first_time(self, tag):
        m = self.markers(tag)
        return m[0][0] if m else None

    def guest_log(self, name):
        """The guest console lines dom0 dumped as `XW log-<name> <line>`."""
        return [rest for _, _, rest in self.markers('log-' + name)]

    def text(self):
        return '\n'.join('%7.2f %s' % (t, s) for t, s in self.lines)

    def completed(self):
        return self.marker('run-exit') is not None

    def failed_steps(self):
        """The scenario's steps that did not succeed (empty: all did)."""
        bad = [tag for _, tag, _ in self.markers()
               if re.search(r'-fail$|timeout|not-recovered|not-started|backend-left|-late$|'
                            r'^diag-why$|^guest-boot-stuck$', tag)]
        for tag in ('fw-created', 'client-created', 'client2-created', 'detach', 'attach',
                    'uplink-detach', 'uplink-attach', 'fw-shutdown'):
            rest = self.marker(tag)
            if rest is None or not rest.startswith('rc=0'):
                bad.append(tag)
        return bad

    def flake(self):
        """A known flake signature, or a boot that never reached the end."""
        body = '\n'.join(s for _, s in self.lines if 'XW log-' not in s)
        for sig in FLAKES:
            if sig in body:
                return sig
        if not self.completed():
            return 'timed out' if self.timed_out else 'run.sh did not finish'
        return None


def boot(cache, overlay, timeout, log_path, memory_mb=1024):
    """Boots once. `overlay` (bytes, a gzip'd cpio) is appended to the dom0
    initramfs: Linux unpacks concatenated archives in order."""
    if QEMU is None:
        raise FileNotFoundError('qemu-system-x86_64')
    run_dir = os.path.dirname(log_path)
    initrd = os.path.join(run_dir, 'dom0.cpio.gz')
    with open(initrd, 'wb') as out:
        with open(os.path.join(cache, 'dom0-base.cpio.gz'), 'rb') as base:
            shutil.copyfileobj(base, out)
        out.write(overlay if overlay[:2] == b'\x1f\x8b' else gzip.compress(overlay, 6))
    cmd = [QEMU, '-machine', 'q35', '-accel', 'tcg,thread=multi,tb-size=256',
           '-cpu', 'max,-rdtscp', '-m', str(memory_mb), '-smp', '2',
           '-display', 'none', '-serial', 'stdio', '-monitor', 'none',
           '-nic', 'none', '-no-reboot',
           '-kernel', os.path.join(cache, 'xen'),
           '-append', XEN_CMDLINE,
           '-initrd', '%s %s,%s' % (os.path.join(cache, 'vmlinuz'), DOM0_CMDLINE, initrd)]
    res = BootResult(log_path=log_path)
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    ansi = re.compile(r'\x1b\[[0-9;?]*[A-Za-z]')

    def reader():
        with open(log_path, 'w') as log:
            log.write('# ' + ' '.join(cmd) + '\n')
            for raw in proc.stdout:
                t = time.monotonic() - t0
                line = ansi.sub('', raw.decode('utf-8', 'replace')).rstrip('\r\n').replace('\r', '')
                res.lines.append((t, line))
                log.write('%7.2f %s\n' % (t, line))
                log.flush()

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    try:
        res.rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        res.timed_out = True
        proc.kill()
        res.rc = proc.wait()
    th.join(10)
    res.wall = time.monotonic() - t0
    return res


def boot_with_retry(cache, make_overlay, timeout, run_dir, attempts=3):
    """Boots up to `attempts` times while a known flake of the emulated
    platform (spec §6: dom0 programs crashing under TCG, a triple fault) or
    an unfinished run is seen, unless that run still completed every step.
    A firewall failure without such a flake is never retried. Returns
    (result, [earlier results])."""
    earlier = []
    for i in range(attempts):
        log_path = os.path.join(run_dir, 'serial-%d.log' % (i + 1))
        res = boot(cache, make_overlay(), timeout, log_path)
        benign = res.completed() and not res.failed_steps()
        if res.flake() is None or benign or i == attempts - 1:
            return res, earlier
        earlier.append(res)
    raise AssertionError('unreachable')
