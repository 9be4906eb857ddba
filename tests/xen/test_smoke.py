"""Boot smoke tests for the Xen PVH unikernel image, without Xen.

QEMU boots PVH ELF kernels directly through the XEN_ELFNOTE_PHYS32_ENTRY
note (specs/xen-platform.md §B.3), so the whole boot path (PVH entry,
long mode, IDT, console, command line, memory map, entropy) runs under
TCG. CPUID shows no Xen there, so the image must say so and stop through
QEMU's isa-debug-exit port: QEMU's exit status is 2 * code + 1, i.e. 1 for
the orderly halt and 3 for an error stop.
"""
import os
import re
import shutil
import subprocess
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGE = os.path.join(ROOT, "build", "qubes-firewall.xen")
QEMU = shutil.which("qemu-system-x86_64")
BOOT_TIMEOUT = 60
EXIT_HALT = 1   # isa-debug-exit code 0
EXIT_ERROR = 3  # isa-debug-exit code 1
NO_XEN_LINE = "qubes-firewall: no Xen hypervisor detected; halting"


def make(*args, timeout=600):
    return subprocess.run(["make", "--no-print-directory", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def image():
    r = make("build/qubes-firewall.xen")
    assert r.returncode == 0, r.stdout + r.stderr
    return IMAGE


def boot(image_path, cmdline="", machine="q35"):
    """Boots the image; returns (exit status, debugcon lines, serial text)."""
    if QEMU is None:
        pytest.skip("qemu-system-x86_64 is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        debugcon = os.path.join(tmp, "debugcon.txt")
        serial = os.path.join(tmp, "serial.txt")
        cmd = [QEMU, "-machine", machine, "-accel", "tcg", "-cpu", "max", "-m", "64",
               "-display", "none", "-nodefaults", "-no-reboot",
               "-kernel", image_path, "-append", cmdline,
               "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
               "-debugcon", "file:" + debugcon, "-serial", "file:" + serial]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=BOOT_TIMEOUT)
        except subprocess.TimeoutExpired:
            out = open(debugcon, errors="replace").read() if os.path.exists(debugcon) else ""
            pytest.fail("QEMU did not exit within %d s; console so far:\n%s"
                        % (BOOT_TIMEOUT, out))
        with open(debugcon, errors="replace") as f:
            lines = f.read().splitlines()
        with open(serial, errors="replace") as f:
            serial_text = f.read()
        return r.returncode, lines, serial_text


@pytest.mark.parametrize("machine", ["q35", "pc"])
def test_boots_and_reports_no_xen(image, machine):
    rc, lines, serial = boot(image, "--log-level=debug --ipv4=10.137.0.5 "
                             "--ipv4-gw 10.137.0.1 --nat-table-size=1234", machine)
    text = "\n".join(lines)
    assert rc == EXIT_HALT, text
    assert re.match(r"^qubes-firewall \S+ \(Xen PVH unikernel\)", lines[0]), text
    assert ('qubes-firewall: command line: "--log-level=debug --ipv4=10.137.0.5 '
            '--ipv4-gw 10.137.0.1 --nat-table-size=1234"') in lines
    opts = [l for l in lines if l.startswith("qubes-firewall: options:")]
    assert len(opts) == 1, text
    for want in ("ipv4=10.137.0.5", "ipv4-gw=10.137.0.1", "ipv4-dns=(qubesdb)",
                 "nat-table-size=1234", "log-level=debug"):
        assert want in opts[0].split(), opts[0]
    # --log-level=debug took effect: debug lines from the memory map.
    assert any(l.startswith("[DEBUG] mem: RAM 0x100000..") for l in lines), text
    # The arena starts after the image and ends below the 64 MiB of RAM.
    m = [re.search(r"arena 0x([0-9a-f]+)\.\.0x([0-9a-f]+)", l) for l in lines]
    m = [x for x in m if x]
    assert m, text
    start, end = int(m[0].group(1), 16), int(m[0].group(2), 16)
    assert 0x100000 < start < end <= 64 << 20
    assert start % 4096 == 0 and end % 4096 == 0
    assert any(l.startswith("[INFO] entropy:") or l.startswith("[WARN] entropy:")
               for l in lines), text
    assert lines[-1] == NO_XEN_LINE, text
    # The same text went to COM1.
    assert NO_XEN_LINE in serial


def test_default_log_level_hides_debug(image):
    rc, lines, _ = boot(image, "")
    assert rc == EXIT_HALT
    assert not any(l.startswith("[DEBUG]") for l in lines), lines
    assert 'qubes-firewall: command line: ""' in lines
    assert lines[-1] == NO_XEN_LINE


@pytest.mark.parametrize("cmdline,word", [
    ("--bogus", '"--bogus"'),
    ("--log-level=debug --ipv4=300.1.2.3", "300.1.2.3"),
    ("--nat-table-size=1", "nat-table-size"),
    ("--ipv4", "missing value"),
])
def test_bad_command_line_stops_with_a_clear_message(image, cmdline, word):
    rc, lines, _ = boot(image, cmdline)
    text = "\n".join(lines)
    assert rc == EXIT_ERROR, text
    bad = [l for l in lines if l.startswith("qubes-firewall: bad command line: ")]
    assert len(bad) == 1, text
    assert word in bad[0] and bad[0].endswith("; halting"), bad[0]
    # Refused as a whole: nothing after the error, no options applied.
    assert lines[-1] == bad[0]
    assert not any(l.startswith("qubes-firewall: options:") for l in lines)
    assert NO_XEN_LINE not in lines


def test_exception_reporter(tmp_path):
    """A test build that reads beyond the identity map must print a #PF
    report with CR2, registers and a backtrace, then stop with an error."""
    build = tmp_path / "build"
    target = str(build / "qubes-firewall.xen")
    r = make("BUILD=" + str(build), "PVH_EXTRA_CFLAGS=-DPVH_TEST_FAULT", target)
    assert r.returncode == 0, r.stdout + r.stderr
    rc, lines, _ = boot(target, "")
    text = "\n".join(lines)
    assert rc == EXIT_ERROR, text
    assert any(l.startswith("qubes-firewall: CPU exception 14 (#PF page fault)")
               for l in lines), text
    assert re.search(r"cr2=0000005000000000", text), text
    assert re.search(r"rip=[0-9a-f]{16} rsp=[0-9a-f]{16}", text), text
    frames = [l for l in lines if re.match(r"^\s+(backtrace: )?[0-9a-f]{16}$", l)]
    assert len(frames) >= 2, text
    assert NO_XEN_LINE not in lines


def readelf(*args):
    return subprocess.run(["readelf", "-W", *args], capture_output=True, text=True,
                          check=True).stdout


def test_image_is_small_pvh_elf(image):
    size = os.path.getsize(image)
    assert 0 < size < 512 * 1024, size
    header = readelf("-h", image)
    assert "ELF64" in header and "Advanced Micro Devices X86-64" in header
    entry = int(re.search(r"Entry point address:\s+0x([0-9a-f]+)", header).group(1), 16)
    notes = readelf("-n", image)
    m = re.search(r"Xen\s+0x00000004\s+.*\(0x00000012\).*description data: "
                  r"([0-9a-f]{2}) ([0-9a-f]{2}) ([0-9a-f]{2}) ([0-9a-f]{2})", notes)
    assert m, notes
    note_entry = int("".join(reversed(m.groups())), 16)
    assert note_entry == entry == 0x100000
    segments = readelf("-l", image)
    loads = [l.split() for l in segments.splitlines() if l.strip().startswith("LOAD")]
    assert loads
    assert all(int(l[3], 16) >= 0x100000 for l in loads)  # physical addresses
    assert not any("RWE" in l for l in loads), segments
    assert "NOTE" in segments
    # Stripped, with a link to the separate debug file.
    sections = readelf("-S", image)
    assert ".symtab" not in sections and ".debug_info" not in sections
    assert ".gnu_debuglink" in sections
    debug = image + ".debug"
    assert ".debug_info" in readelf("-S", debug)


def test_reproducible_build():
    r = make("repro-check", timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "repro-check: identical builds" in r.stdout
