"""The unikernel on a real Xen: Xen 4.17 + a busybox dom0 under QEMU TCG
(docs/xen-tier.md, specs/xen-in-qemu.md).

One boot runs the whole scenario of tests/xen/xenworld/scenario.py (one
retry for the known TCG flakes); the tests below read its report.

Stage A: the image boots as a PVH domU (memory == maxmem = 32 MiB), prints
its banner and "Xen detected" on the console xenconsoled logs, and
`xl shutdown` completes.
Stage B: QubesDB and qrexec over real vchan with our dom0 daemons, the
uplink vif (backend in dom0 on a bridge), a Linux PVH client whose vif
backend is the unikernel: ping + TCP to dom0 through NAT, then dropped by a
rule set, then allowed again.

A Stage B step fails, unless the unikernel says that the piece it needs is
not built in yet (a line matched by NOT_BUILT_IN): that is an expected
failure, which turns into a pass or a failure by itself when the piece lands.
The run's serial log and a summary are left in build/xen-run/.
"""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, 'tests', 'sim'))

from xenworld import qemu, scenario  # noqa: E402

CACHE = os.path.join(ROOT, 'build', 'xen-cache')
RUN_DIR = os.path.join(ROOT, 'build', 'xen-run')
IMAGE = os.path.join(ROOT, 'build', 'qubes-firewall.xen')
BOOT_TIMEOUT = int(os.environ.get('XENWORLD_TIMEOUT', '900'))

# Unikernel lines saying a piece is not there yet -> expected failure.
NOT_BUILT_IN = {
    'xenstore': r'app_xenstore\(\) is missing',
    'netfront': r'netfront is not built in yet',
}


@pytest.fixture(scope='session')
def run():
    if qemu.QEMU is None:
        pytest.skip('qemu-system-x86_64 is not installed')
    r = subprocess.run([os.path.join(ROOT, 'scripts', 'xen-image'), CACHE], cwd=ROOT,
                       capture_output=True, text=True, timeout=900)
    if r.returncode == 2:
        pytest.skip('the Debian Xen/kernel .debs cannot be fetched: ' + r.stderr.strip()[-300:])
    assert r.returncode == 0, 'scripts/xen-image failed:\n' + r.stdout + r.stderr
    r = subprocess.run(['make', '--no-print-directory', 'build/qubes-firewall.xen'], cwd=ROOT,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, 'building the unikernel failed:\n' + r.stdout + r.stderr
    shutil.rmtree(RUN_DIR, ignore_errors=True)
    os.makedirs(RUN_DIR)
    cmdline = os.environ.get('XENWORLD_FW_CMDLINE', '')
    res, earlier = qemu.boot_with_retry(
        CACHE, lambda: scenario.overlay(CACHE, IMAGE, fw_cmdline=cmdline),
        BOOT_TIMEOUT, RUN_DIR)
    _write_summary(res, earlier)
    if res.flake() is not None and not res.completed():
        pytest.fail('the Xen boot did not complete (%s); serial log: %s\n%s'
                    % (res.flake(), res.log_path, res.text()[-6000:]))
    return res


def _seconds(text, key=None):
    if text is None:
        return None
    m = re.search((re.escape(key) + r'=' if key else r'^') + r'(-?[0-9.]+)', text)
    return float(m.group(1)) if m else None


def _write_summary(res, earlier):
    dom0_ready = res.first_time('dom0-ready')
    s = {
        'boots': len(earlier) + 1,
        'earlier_failures': [e.flake() for e in earlier],
        'qemu_wall_s': round(res.wall, 1),
        'qemu_start_to_dom0_ready_s': round(dom0_ready, 1) if dom0_ready else None,
        'fw_xl_create_s': _seconds(res.marker('fw-created'), 'time'),
        'fw_unpause_to_first_line_s': _seconds(res.marker('fw-first-line')),
        'fw_unpause_to_qubesdb_synced_s': _seconds(res.marker('qdb-ok')),
        'fw_unpause_to_qrexec_connected_s': _seconds(res.marker('qrexec-ok')),
        'client_xl_create_s': _seconds(res.marker('client-created'), 'time'),
        'drop_rules_effective_s': _seconds(res.marker('drop-ok')),
        'fw_shutdown_s': _seconds(res.marker('fw-shutdown'), 'time'),
        'fw_memory_at_startup': next((l.split('mem: ', 1)[1] for l in
                                      res.guest_log(scenario.FW_NAME)
                                      if 'used at start-up' in l), None),
        'markers': [[round(t, 2), tag, rest] for t, tag, rest in res.markers()
                    if not tag.startswith('log-')],
    }
    with open(os.path.join(RUN_DIR, 'summary.json'), 'w') as f:
        json.dump(s, f, indent=1)


def fw_log(run):
    return run.guest_log(scenario.FW_NAME)


def context(run):
    return ('\n--- firewall console ---\n' + '\n'.join(fw_log(run)[-60:]) +
            '\n--- scenario ---\n' + '\n'.join('%s %s' % (t, r) for _, t, r in run.markers()
                                               if not t.startswith('log-'))[-4000:] +
            '\n(serial log: %s)' % run.log_path)


def expect_built_in(run, *pieces):
    """xfail when the unikernel reports one of `pieces` missing."""
    text = '\n'.join(fw_log(run))
    for p in pieces:
        if re.search(NOT_BUILT_IN[p], text):
            pytest.xfail('the unikernel reports %s is not built in yet' % p)


# ---- Stage A --------------------------------------------------------------------

def test_dom0_boots(run):
    assert run.marker('dom0-ready') is not None, context(run)
    assert run.marker('init-error') is None, context(run)


def test_firewall_boots_as_pvh_domu(run):
    created = run.marker('fw-created')
    assert created is not None and created.startswith('rc=0'), context(run)
    assert run.marker('fw-mem') == str(scenario.FW_MEMORY_MB), context(run)
    assert run.marker('fw-maxmem') == str(scenario.FW_MEMORY_MB * 1024), context(run)
    assert run.marker('fw-first-line') is not None, context(run)
    lines = fw_log(run)
    assert any(re.match(r'^qubes-firewall \S+ \(Xen PVH unikernel\)', l) for l in lines), \
        context(run)
    assert 'qubes-firewall: Xen detected' in lines, context(run)
    assert not any('PANIC' in l for l in lines), context(run)
    assert run.marker('fw-xen-detected') is not None, context(run)


def test_firewall_did_not_crash(run):
    state = run.marker('fw-state-end') or ''
    assert 'c' not in state, 'firewall domain crashed (xl state %r)%s' % (state, context(run))


def test_xl_shutdown_completes(run):
    res = run.marker('fw-shutdown')
    assert res is not None and res.startswith('rc=0'), context(run)


# ---- Stage B --------------------------------------------------------------------

def test_qubesdb_synced_over_vchan(run):
    expect_built_in(run, 'xenstore')
    assert run.marker('qdb-synced') is not None, context(run)
    assert run.marker('qdb-fatal') is None, context(run)


def test_qrexec_services(run):
    expect_built_in(run, 'xenstore')
    assert run.marker('qrexec-connected') is not None, context(run)
    results = {r.split()[0]: r for r in
               (rest for _, _, rest in run.markers('qrexec-result'))}
    assert 'rc=0' in results.get('qubes.WaitForSession', ''), context(run)
    assert 'rc=0' in results.get('qubes.FirewallStatus', ''), context(run)
    out = [rest for _, _, rest in run.markers('qrexec-stdout')
           if rest.startswith('qubes.FirewallStatus')]
    assert out, 'qubes.FirewallStatus printed nothing' + context(run)


def test_uplink_connected(run):
    expect_built_in(run, 'xenstore', 'netfront')
    st = run.marker('uplink-state') or ''
    assert 'backend=4' in st and 'frontend=4' in st, context(run)


def _client_ready(run):
    expect_built_in(run, 'xenstore', 'netfront')
    created = run.marker('client-created')
    assert created is not None and created.startswith('rc=0'), \
        'xl create of the client (vif backend = the firewall) failed' + context(run)
    assert run.marker('client-net-up') is not None, context(run)


def test_client_vif_served_by_firewall(run):
    """netback on real Xen: libxl's 10 s InitWait wait passes (xl create
    succeeds), Linux netfront reaches Connected with the unikernel."""
    expect_built_in(run, 'xenstore')
    created = run.marker('client-created')
    assert created is not None and created.startswith('rc=0'), \
        'xl create of the client (vif backend = the firewall) failed' + context(run)
    assert run.marker('client-backend-state') == '4', context(run)
    assert run.marker('client-net-up') is not None, context(run)
    assert any('attached' in l for l in fw_log(run)), context(run)


def test_client_ping_and_tcp_through_nat(run):
    _client_ready(run)
    assert run.marker('accept-ok') is not None, context(run)
    # "?": dom0 could not look the connection up any more (already closed)
    peers = [rest.split()[0] for _, _, rest in run.markers('tcp-peer')
             if rest.split() and rest.split()[0] != '?']
    fw_ip = scenario.world_objects()[2].ip
    assert peers and all(p.startswith(fw_ip + ':') for p in peers), \
        'dom0 saw TCP peers %r, expected the firewall %s (NAT)%s' % (peers, fw_ip, context(run))


def test_drop_rules_drop_then_accept_again(run):
    _client_ready(run)
    assert run.marker('accept-ok') is not None, context(run)
    assert run.marker('drop-ok') is not None, context(run)
    assert run.marker('reaccept-ok') is not None, context(run)


# ---- Stage C: netback beyond one client ------------------------------------------

def _last_status(run):
    """The lines of the last qubes.FirewallStatus answer."""
    out, current = [], []
    for _, _, rest in run.markers('qrexec-stdout'):
        if not rest.startswith('qubes.FirewallStatus'):
            continue
        line = rest[len('qubes.FirewallStatus'):].strip()
        if line.startswith('qubes-c-firewall'):
            current = []
            out.append(current)
        current.append(line)
    return out[-1] if out else []


def _client_status(run, ip):
    return next((l for l in _last_status(run) if l.startswith('client ') and ' %s:' % ip in l), '')


def test_two_clients_at_once_and_isolated(run):
    """A second client is served while the first is; each reaches dom0 but
    never the other (D10), and the firewall counted those drops as
    client-to-client, so the failure was its doing."""
    _client_ready(run)
    assert run.marker('two-clients-ok') is not None, context(run)
    assert run.marker('isolation-ok') is not None, context(run)
    for vm in (scenario.world_objects()[3], scenario.client2_object()):
        line = _client_status(run, vm.ip)
        m = re.search(r'client-to-client (\d+)', line)
        assert m and int(m.group(1)) > 0, \
            'no client-to-client drops counted for %s: %r%s' % (vm.ip, line, context(run))


def test_frontend_close_and_reopen_served_again(run):
    """netfront unloaded and loaded again in the client (the frontend goes
    Closing, Closed, then Initialising, as Windows PV drivers do): the
    firewall serves the same vif again."""
    _client_ready(run)
    res = run.marker('reopen-ok')
    assert res is not None, context(run)
    assert int(_seconds(res, 'connects')) >= 2, context(run)


def test_client_that_stops_reading_does_not_disturb_others(run):
    """The second client stops reading its RX ring while about 400 frames
    come for it: the firewall drops what does not fit (counted tx-full for
    that client, nothing queued), the first client keeps passing traffic
    meanwhile, and the second is served again afterwards."""
    _client_ready(run)
    assert run.marker('deaf-others-ok') is not None, context(run)
    assert run.marker('deaf-recovered') is not None, context(run)
    line = _client_status(run, scenario.client2_object().ip)
    m = re.search(r'tx-full (\d+)', line)
    assert m and int(m.group(1)) > 0, \
        'no frames dropped for the client that stopped reading: %r%s' % (line, context(run))


def test_network_detach_and_attach(run):
    """`xl network-detach`: the firewall writes Closed and removes the backend
    directory, so libxl completes; `xl network-attach` of a new vif is then
    served like the first."""
    _client_ready(run)
    assert (run.marker('detach') or '').startswith('rc=0'), context(run)
    assert run.marker('detach-backend-gone') is not None, context(run)
    assert any('removed by the toolstack' in l for l in fw_log(run)), context(run)
    assert (run.marker('attach') or '').startswith('rc=0'), context(run)
    assert run.marker('reattach-ok') is not None, context(run)


def test_netvm_goes_away_and_a_new_uplink_comes(run):
    """`xl network-detach` of the firewall's own uplink vif: netfront follows
    the backend's close, the clients lose dom0; `xl network-attach` of a new
    uplink vif: the firewall connects it and the clients reach dom0 again."""
    _client_ready(run)
    assert (run.marker('uplink-detach') or '').startswith('rc=0'), context(run)
    assert run.marker('uplink-lost-logged') is not None, context(run)
    assert run.marker('uplink-gone-ok') is not None, context(run)
    assert (run.marker('uplink-attach') or '').startswith('rc=0'), context(run)
    back = run.marker('uplink-back-ok')
    assert back is not None, context(run)
    assert int(_seconds(back, 'connects')) >= 2, context(run)
