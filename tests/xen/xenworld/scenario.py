"""The acceptance scenario run inside dom0 (docs/xen-tier.md).

Builds the per-run overlay archive appended to the dom0 initramfs:
/xenworld/run.sh (the scenario, reporting `XW <tag> <text>` lines on the
console), the unikernel, our dom0 daemons, the xl configs, the firewall's
QubesDB contents and the Linux client's initramfs.

What dom0 writes comes from tests/sim/qubessim/world.py, the same module the
simulated tier uses, so both tiers feed the firewall the same keys.
"""

import gzip
import os
import shlex

from . import cpio

KEY_SEP = '\t'

# Addressing: Qubes' 10.137.0.<qid> (qubes-protocols.md §5.1). dom0 stands in
# for sys-net (qid 2) with the gateway address on a bridge with no ports but
# the firewall's uplink vif.
NETVM_QID = 2
FW_QID = 3
CLIENT_QID = 20
CLIENT2_QID = 21
FW_NAME = 'fw'
CLIENT_NAME = 'client'
CLIENT2_NAME = 'client2'
FW_UPLINK_MAC = '00:16:3e:5e:6c:03'
CLIENT_MAC = '00:16:3e:5e:6c:00'
CLIENT2_MAC = '00:16:3e:5e:6c:01'
TCP_PORT = 7777
STREAM_PORT = 7778   # delayed TCP bursts, for the client that stops reading
DEAF_SECONDS = 8
FW_MEMORY_MB = 32


def world_objects():
    from qubessim import world   # tests/sim on sys.path (test_real_xen.py)
    netvm = world.netvm(name='sys-net', qid=NETVM_QID, domid=0)
    fw = world.firewall_vm(name=FW_NAME, qid=FW_QID, domid=1, mac=FW_UPLINK_MAC)
    client = world.VM(name=CLIENT_NAME, qid=CLIENT_QID, domid=2, mac=CLIENT_MAC,
                      rules=['action=accept'], policy='drop')
    return world, netvm, fw, client


def client2_object():
    from qubessim import world
    return world.VM(name=CLIENT2_NAME, qid=CLIENT2_QID, domid=3, mac=CLIENT2_MAC,
                    rules=['action=accept'], policy='drop')


def qdb_keys_file(world, fw, netvm):
    """The firewall's QubesDB at start (no client connected yet)."""
    lines = []
    for k, v in world.firewall_qdb_entries(fw, netvm, clients=()):
        assert KEY_SEP not in v and '\n' not in v
        lines.append('%s%s%s' % (k, KEY_SEP, v))
    return '\n'.join(lines) + '\n'


def rule_commands(world, client, rules, policy):
    """dom0's rule update for the client (qubes-protocols.md §6.1) as
    qubesdb-dom0 stdin commands: RM "<base>/", WRITE policy, WRITE NNNN...,
    WRITE base "" (the commit)."""
    entries = world.rule_entries(client.ip, policy, world.rules_for_family(rules, False))
    base = '/qubes-firewall/%s' % client.ip
    cmds = ['R %s/' % base]
    cmds += ['W %s %s' % (k, v) if v else 'W %s' % k for k, v in entries]
    return cmds


FW_CFG = '''name = "{name}"
type = "pvh"
kernel = "/xenworld/qubes-firewall.xen"
cmdline = "{cmdline}"
memory = {mem}
maxmem = {mem}
vcpus = 1
vif = [ 'mac={mac},bridge=xenbr0,script=/etc/xen/scripts/vif-min,ip={ip}' ]
on_crash = "preserve"
on_reboot = "destroy"
on_poweroff = "destroy"
'''

CLIENT_CFG = '''name = "{name}"
type = "pvh"
kernel = "/root/guests/vmlinuz"
ramdisk = "/xenworld/client.cpio.gz"
extra = "console=hvc0 quiet loglevel=3 xwc_ip={ip} xwc_gw={gw} xwc_target={target} xwc_port={port} xwc_peer={peer} xwc_stream={stream} xwc_deaf={deaf}"
memory = 96
vcpus = 1
vif = [ 'backend={fw},mac={mac},ip={ip}' ]
on_crash = "preserve"
on_reboot = "destroy"
on_poweroff = "destroy"
'''

# The Linux client: netfront, Qubes-style addressing (/32, gateway via a
# permanent neighbour entry to fe:ff:ff:ff:ff:ff, qubes-protocols.md §5.5),
# then one probe per second reported on hvc0: ping and TCP to dom0, and a
# ping to the other client (which the firewall must drop, D10). dom0 can
# answer a TCP probe with a command (cmd=reload: unload and reload
# netfront, a frontend close and reopen; cmd=deaf: stop reading for
# xwc_deaf seconds in the middle of a download). Whatever vif appears
# (after a reload or a network-attach) is configured again.
CLIENT_INIT = r'''#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
for kv in $(cat /proc/cmdline); do
	case $kv in xwc_*=*) eval "${kv%%=*}=${kv#*=}" ;; esac
done
up() { cut -d' ' -f1 /proc/uptime; }
echo "XWC init $(up)"
IF=
# ensure_net: configure the first ethN if it lacks our address or routes.
ensure_net() {
	IF=
	for d in /sys/class/net/eth*; do
		[ -e "$d" ] && { IF=${d##*/}; break; }
	done
	[ -n "$IF" ] || return 1
	if ip addr show dev $IF | grep -q "inet $xwc_ip/" &&
	   ip route | grep -q "^default via $xwc_gw dev $IF"; then
		return 0
	fi
	ip link set $IF up
	ip addr add $xwc_ip/32 dev $IF 2>/dev/null
	ip route add $xwc_gw dev $IF 2>/dev/null
	ip route add default via $xwc_gw dev $IF 2>/dev/null
	arp -i $IF -s $xwc_gw fe:ff:ff:ff:ff:ff
	echo "XWC net-up $IF $(cat /sys/class/net/$IF/operstate) $(up)"
}
wait_eth() {
	n=0
	while ! ls /sys/class/net | grep -q '^eth' && [ $n -lt 150 ]; do n=$((n + 1)); sleep 0.2; done
}
insmod /xen-netfront.ko
wait_eth
ip link set lo up
ensure_net
i=0
while [ $i -lt 2000 ]; do
	i=$((i + 1))
	ensure_net || wait_eth
	if ping -c 1 -W 2 $xwc_target >/dev/null 2>&1; then p=OK; else p=FAIL; fi
	r=$(echo "hello $xwc_ip $i" | timeout 4 nc -w 3 $xwc_target $xwc_port 2>/dev/null)
	case $r in *dom0-tcp-ok*) t=OK ;; *) t=FAIL ;; esac
	if ping -c 1 -W 1 $xwc_peer >/dev/null 2>&1; then q=OK; else q=FAIL; fi
	echo "XWC probe $i ping=$p tcp=$t peer=$q $(up)"
	case $r in
	*cmd=reload*)
		echo "XWC reload-start $IF $(up)"
		# the driver lets go of the device (frontend Closing, Closed) and
		# takes it again (Initialising ... Connected)
		dev=$(basename "$(readlink /sys/class/net/$IF/device)")
		echo "$dev" > /sys/bus/xen/drivers/vif/unbind; r1=$?
		sleep 1
		echo "$dev" > /sys/bus/xen/drivers/vif/bind; r2=$?
		wait_eth
		ensure_net
		echo "XWC reload-done $IF $dev unbind=$r1 bind=$r2 $(up)" ;;
	*cmd=deaf*)
		# 40 connections whose data dom0 sends 4 s after accepting
		# them: 40 initial congestion windows (about 400 frames) arrive
		# while we read nothing, more than the 256 RX buffers posted.
		k=0
		while [ $k -lt 40 ]; do
			nc $xwc_target $xwc_stream >/dev/null 2>&1 &
			k=$((k + 1))
		done
		sleep 2
		echo "XWC deaf-start $(up)"
		ip link set $IF down
		sleep $xwc_deaf
		ip link set $IF up
		killall nc 2>/dev/null
		ensure_net
		echo "XWC deaf-end $(up)" ;;
	esac
	sleep 1
done
poweroff -f
'''

# Run by dom0's `nc -ll -e` (busybox's persistent server) for each TCP
# connection: answers (with the command queued for that client, if any), and
# records the peer address dom0 sees (the firewall's, when NAT works).
TCP_REPLY = r'''#!/bin/sh
# nc -e starts us with an empty environment.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
read line
# The connection on our port (established, or close-wait once the client
# has sent all it had) in /proc/net/tcp{,6} (busybox nc
# may listen on a dual-stack socket): the remote address and port are
# little-endian hex, IPv4 in the last 8 digits ("...0300890A:C350" is
# 10.137.0.3:50000).
rem=$(cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |
	awk '($4 == "01" || $4 == "08") && toupper($2) ~ /:%04X$/ {print $3; exit}')
peer=$(echo "$rem" | sed -n 's/^.*\(..\)\(..\)\(..\)\(..\):\(....\)$/0x\4 0x\3 0x\2 0x\1 0x\5/p' |
	{ read a b c d p && printf '%%d.%%d.%%d.%%d:%%d' $a $b $c $d $p; })
# (the client may already have closed and the entry gone: "?")
echo "${peer:-?} $line" >> /tmp/tcp-peers.log
# "hello <client ip> <n>": a command queued in /tmp/cmd.<client ip> goes once.
ip=$(echo "$line" | awk '{print $2}')
cmd=
if [ -n "$ip" ] && [ -f "/tmp/cmd.$ip" ]; then
	cmd=" cmd=$(cat "/tmp/cmd.$ip")"
	rm -f "/tmp/cmd.$ip"
fi
echo "dom0-tcp-ok$cmd"
''' % TCP_PORT

# Data sent 4 s after the connection came (the client has stopped reading
# by then), more than one congestion window of it.
TCP_STREAM = r'''#!/bin/sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
sleep 4
exec dd if=/dev/zero bs=1448 count=40 2>/dev/null
'''

RUN_SH = r'''#!/bin/sh
# The real-Xen acceptance scenario (tests/xen/xenworld/scenario.py). Every
# step is bounded; results are `XW <tag> <text>` lines on the console.
export PATH=/xenworld/bin:/bin:/sbin:/usr/bin:/usr/sbin:/usr/lib/xen-4.17/bin
FW={fw}
CLIENT={client}
CLIENT2={client2}
FWLOG=/var/log/xen/console/guest-$FW.log
CLLOG=/var/log/xen/console/guest-$CLIENT.log
CL2LOG=/var/log/xen/console/guest-$CLIENT2.log
now() {{ cut -d' ' -f1 /proc/uptime; }}
since() {{ awk -v a="$1" -v b="$(now)" 'BEGIN {{ printf "%.2f", b - a }}'; }}
# tick: whole seconds of uptime in $UP, without starting a program (dom0
# programs crash now and then under TCG, spec §6; a wait loop must not die
# of it, and a crashed grep or sleep only costs one more round).
tick() {{ read UP _ < /proc/uptime; UP=${{UP%.*}}; }}
# wait_for FILE REGEX SECONDS
wait_for() {{
	tick; end=$((UP + $3))
	until grep -q -E -- "$2" "$1" 2>/dev/null; do
		tick; [ "$UP" -ge "$end" ] && return 1
		sleep 0.2
	done
}}
# xl_create LOG ARGS...: `xl create ARGS`, once more when xl itself crashed
# or libxc misread the kernel image (the same TCG flakes); any other
# failure is the result.
xl_create() {{
	log=$1; shift
	timeout 90 xl create "$@" >"$log" 2>&1; rc=$?
	if [ $rc -ge 128 ] || grep -q 'Invalid kernel' "$log"; then
		echo "XW xl-create-retry rc=$rc $*"
		n=$(awk -F'"' '/^name/ {{ print $2 }}' "$(eval echo \${{$#}})")
		xl destroy "$n" >/dev/null 2>&1
		timeout 90 xl create "$@" >"$log" 2>&1; rc=$?
	fi
	return $rc
}}
# probe_after LOG N REGEX SECONDS: a client probe numbered above N matches REGEX
probe_after() {{
	# N came from a $(last_probe) whose program crashed: it vanished from
	# the arguments; count from 0.
	[ $# -lt 4 ] && set -- "$1" 0 "$2" "$3"
	tick; end=$((UP + $4))
	until awk -v n="$2" -v re="$3" '/XWC probe/ {{ split($0, f, "XWC probe "); split(f[2], g, " ");
		if (g[1] + 0 > n + 0 && $0 ~ re) found = 1 }} END {{ exit !found }}' "$1" 2>/dev/null; do
		tick; [ "$UP" -ge "$end" ] && return 1
		sleep 0.5
	done
}}
last_probe() {{
	p=$(grep -o 'XWC probe [0-9]*' "$1" 2>/dev/null | tail -n1 | awk '{{ print $3 + 0 }}')
	echo "${{p:-0}}"
}}
# guest_booted LOG NAME: a Linux client that never ran its /init (whose
# first line needs nothing of the firewall) hung while booting under TCG.
guest_booted() {{
	grep -q 'XWC init' "$1" 2>/dev/null && return 0
	echo "XW guest-boot-stuck $2 $(xl list "$2" 2>/dev/null | awk 'NR == 2 {{ print $5, $6 }}')"
	return 1
}}
fw_state() {{ xl list "$FW" 2>/dev/null | awk 'NR == 2 {{ print $5 }}'; }}
qdb() {{ for c in "$@"; do echo "$c" >&3; done; }}
# status: one qubes.FirewallStatus call, its output as qrexec-stdout lines.
status() {{
	c=$(grep -c 'qrexec-result qubes.FirewallStatus' /tmp/qrexec.log)
	echo "S qubes.FirewallStatus" >&4
	tick; end=$((UP + 20))
	while [ "$(grep -c 'qrexec-result qubes.FirewallStatus' /tmp/qrexec.log)" -le "$c" ] &&
	      tick && [ "$UP" -lt "$end" ]; do sleep 0.5; done
}}
# diag WHY: what Xen and the firewall look like when a step did not happen
# (at most three times): is the firewall's loop alive (answers ping and
# qrexec), where its vCPU is, its LAPIC and event channels, its XenStore keys.
diag() {{
	[ "$(cat /tmp/diag-count 2>/dev/null || echo 0)" -ge 3 ] && return
	echo $(( $(cat /tmp/diag-count 2>/dev/null || echo 0) + 1 )) > /tmp/diag-count
	echo "XW diag-why $1"
	echo "XW diag-state $(fw_state)"
	if ping -c 2 -W 2 {fw_ip} >/dev/null 2>&1; then echo "XW diag-ping OK"; else echo "XW diag-ping FAIL"; fi
	status
	xen-hvmctx "$FWID" 2>&1 | grep -i -E 'rip|rflags|apic|irr|isr|tpr' | head -n 40 | sed 's/^/XW diag-ctx /'
	xl debug-keys e >/dev/null 2>&1
	xl debug-keys q >/dev/null 2>&1
	xl dmesg 2>/dev/null | tail -n 150 | sed 's/^/XW diag-xen /'
	xenstore-ls -f /local/domain 2>/dev/null | grep -E '/(device|backend)/vif/[0-9/]+/state ' |
		sed 's/^/XW diag-vif-state /'
	xenstore-ls -f /local/domain/$FWID 2>/dev/null | grep -v -E '/(qubes|vm-data)' | head -n 120 | sed 's/^/XW diag-xs /'
}}
dump_logs() {{
	for f in "$FWLOG" "$CLLOG" "$CL2LOG"; do
		[ -f "$f" ] || continue
		n=$(basename "$f" .log); n=${{n#guest-}}
		sed "s/^/XW log-$n /" "$f"
	done
	for f in /tmp/qdb.log /tmp/qrexec.log; do
		[ -f "$f" ] && sed "/^XW /!s/^/XW log-$(basename $f .log) /" "$f"
	done
	[ -f /tmp/tcp-peers.log ] && sed 's/^/XW tcp-peer /' /tmp/tcp-peers.log
}}
finish() {{
	if xl domid "$CLIENT" >/dev/null 2>&1; then
		xl destroy "$CLIENT"; echo "XW client-destroyed"
	fi
	if xl domid "$CLIENT2" >/dev/null 2>&1; then
		xl destroy "$CLIENT2"; echo "XW client2-destroyed"
	fi
	echo "XW fw-state-end $(fw_state)"
	if xl domid "$FW" >/dev/null 2>&1; then
		t5=$(now)
		if timeout 40 xl shutdown -w "$FW" >/tmp/xl-shutdown.log 2>&1; then
			echo "XW fw-shutdown rc=0 time=$(since $t5)"
		else
			echo "XW fw-shutdown rc=$? time=$(since $t5) state=$(fw_state)"
			sed 's/^/XW xl-shutdown /' /tmp/xl-shutdown.log
			diag 'xl shutdown did not complete'
			xl destroy "$FW"
		fi
	fi
	exec 3>&- 4>&-
	sleep 0.5
	dump_logs
	exit 0
}}

echo "XW versions $(cat /etc/xenworld-versions | tr '\n' ' ')"
# dom0 as sys-net: the gateway address on a bridge without physical ports.
brctl addbr xenbr0; brctl stp xenbr0 off; brctl setfd xenbr0 0
ip addr add {netvm_ip}/24 dev xenbr0
ip link set xenbr0 up
nc -ll -p {port} -e /xenworld/tcp-reply.sh >/dev/null 2>&1 &
nc -ll -p {stream} -e /xenworld/tcp-stream.sh >/dev/null 2>&1 &

# ---- Stage A: the unikernel as a PVH domU ------------------------------------
t0=$(now)
xl_create /tmp/xl-fw.log -p /xenworld/fw.cfg
rc=$?
echo "XW fw-created rc=$rc time=$(since $t0)"
sed 's/^/XW xl-fw /' /tmp/xl-fw.log
[ $rc -eq 0 ] || finish
FWID=$(xl domid "$FW")
echo "XW fw-domid $FWID"
xl list "$FW" | awk 'NR == 2 {{ print "XW fw-mem " $3 }}'
echo "XW fw-maxmem $(xenstore-read /local/domain/$FWID/memory/static-max 2>/dev/null)"
mkfifo /run/qdb.in
qubesdb-dom0 "$FWID" /xenworld/fw.qdb </run/qdb.in >/tmp/qdb.log 2>&1 &
exec 3>/run/qdb.in
t1=$(now)
xl unpause "$FW"
if wait_for "$FWLOG" 'qubes-firewall' 60; then
	echo "XW fw-first-line $(since $t1) since-create=$(since $t0)"
else
	echo "XW fw-first-line-timeout state=$(fw_state)"
	finish
fi
wait_for "$FWLOG" 'Xen detected' 20 && echo "XW fw-xen-detected $(since $t1)"

# ---- Stage B: QubesDB, qrexec, uplink, a client behind the firewall ------------
mkfifo /run/qrexec.in
qrexec-dom0 "$FWID" {qrexec_timeout} </run/qrexec.in >/tmp/qrexec.log 2>&1 &
exec 4>/run/qrexec.in
if wait_for /tmp/qdb.log 'qdb-synced' {qdb_timeout}; then
	echo "XW qdb-ok $(since $t1)"
else
	echo "XW qdb-timeout state=$(fw_state)"
fi
if wait_for /tmp/qrexec.log 'qrexec-connected|qrexec-error' {qrexec_timeout}; then
	grep -q qrexec-connected /tmp/qrexec.log && echo "XW qrexec-ok $(since $t1)"
	for s in qubes.WaitForSession qubes.FirewallStatus; do
		echo "S $s" >&4
		wait_for /tmp/qrexec.log "qrexec-result $s" 30 || echo "XW qrexec-timeout $s"
	done
else
	echo "XW qrexec-timeout-connect state=$(fw_state)"
fi
n=0
ust=""
while [ $n -lt {uplink_timeout} ]; do
	ust=$(xenstore-read /local/domain/0/backend/vif/$FWID/0/state 2>/dev/null)
	fst=$(xenstore-read /local/domain/$FWID/device/vif/0/state 2>/dev/null)
	[ "$ust" = 4 ] && [ "$fst" = 4 ] && break
	grep -q 'netfront is not built in' "$FWLOG" && break
	n=$((n + 1)); sleep 1
done
echo "XW uplink-state backend=$ust frontend=$fst after=$(since $t1)"
arp -i xenbr0 -s {fw_ip} {fw_mac}
if ping -c 2 -W 2 {fw_ip} >/dev/null 2>&1; then echo "XW dom0-ping-fw OK"; else echo "XW dom0-ping-fw FAIL"; fi

# The client starts: rules first (domain-pre-spawn), the vif, /connected-ips.
qdb {rules_accept}
qdb "W /connected-ips {client_ip}" "W /connected-ips6"
t2=$(now)
xl_create /tmp/xl-client.log /xenworld/client.cfg
rc=$?
echo "XW client-created rc=$rc time=$(since $t2)"
sed 's/^/XW xl-client /' /tmp/xl-client.log
if [ $rc -ne 0 ]; then
	xenstore-ls -f /local/domain/$FWID/backend 2>/dev/null | sed 's/^/XW xs-fw-backend /' | head -n 40
	finish
fi
CLID=$(xl domid "$CLIENT")
wait_for "$CLLOG" 'XWC net-up' 240 && echo "XW client-net-up $(since $t2)"
guest_booted "$CLLOG" client
echo "XW client-backend-state $(xenstore-read /local/domain/$FWID/backend/vif/$CLID/0/state 2>/dev/null)"
if probe_after "$CLLOG" 0 'ping=OK tcp=OK' {phase_timeout}; then
	echo "XW accept-ok $(since $t2) probe=$(last_probe "$CLLOG")"
else
	echo "XW accept-fail probe=$(last_probe "$CLLOG")"
	diag 'the client got no traffic through'
fi

[ -n "$(grep -o 'XWC probe.*ping=OK tcp=OK' "$CLLOG")" ] || finish
# A rule set that drops everything from the client, committed like dom0 does.
n=$(last_probe "$CLLOG")
t3=$(now)
qdb {rules_drop}
if probe_after "$CLLOG" $((n + 1)) 'ping=FAIL tcp=FAIL' {phase_timeout}; then
	echo "XW drop-ok $(since $t3) probe=$(last_probe "$CLLOG")"
else
	echo "XW drop-fail probe=$(last_probe "$CLLOG")"
fi
# ...and back: the same client passes again (the drop was the rules' doing).
n=$(last_probe "$CLLOG")
t4=$(now)
qdb {rules_accept}
if probe_after "$CLLOG" $((n + 1)) 'ping=OK tcp=OK' {phase_timeout}; then
	echo "XW reaccept-ok $(since $t4) probe=$(last_probe "$CLLOG")"
else
	echo "XW reaccept-fail probe=$(last_probe "$CLLOG")"
	diag 'the client did not pass again'
	finish
fi
status

# ---- Stage C: netback beyond one client --------------------------------------
# C1: a second client at the same time; each reaches dom0, neither the other.
qdb {rules2_accept}
qdb "W /connected-ips {client_ip} {client2_ip}"
t6=$(now)
xl_create /tmp/xl-client2.log /xenworld/client2.cfg
rc=$?
echo "XW client2-created rc=$rc time=$(since $t6)"
sed 's/^/XW xl-client2 /' /tmp/xl-client2.log
[ $rc -eq 0 ] || {{ diag 'xl create of the second client failed'; finish; }}
if probe_after "$CL2LOG" 0 'ping=OK tcp=OK' {phase_timeout}; then
	echo "XW two-clients-ok $(since $t6)"
else
	echo "XW two-clients-fail"; guest_booted "$CL2LOG" client2
	diag 'the second client got no traffic through'; finish
fi
n1=$(last_probe "$CLLOG"); n2=$(last_probe "$CL2LOG")
if probe_after "$CLLOG" $n1 'ping=OK tcp=OK peer=FAIL' {phase_timeout} &&
   probe_after "$CL2LOG" $n2 'ping=OK tcp=OK peer=FAIL' {phase_timeout}; then
	echo "XW isolation-ok"
else
	echo "XW isolation-fail"
fi

# C2: the first client's frontend closes and reopens (netfront unloaded and
# loaded again, as Windows PV drivers do); it is served again.
n1=$(last_probe "$CLLOG")
t7=$(now)
echo reload > /tmp/cmd.{client_ip}
if wait_for "$CLLOG" 'XWC reload-done .* unbind=0 bind=0' {phase_timeout} &&
   probe_after "$CLLOG" $((n1 + 1)) 'ping=OK tcp=OK' {phase_timeout}; then
	n=$(grep -c 'netback backend/vif/'$CLID'/0: connected' "$FWLOG")
	echo "XW reopen-ok $(since $t7) connects=$n"
else
	echo "XW reopen-fail"; diag 'the reopened frontend was not served'
fi

# C3: the second client stops reading in the middle of a download; the
# first one is not disturbed, and the second is served again afterwards.
t8=$(now)
echo deaf > /tmp/cmd.{client2_ip}
if wait_for "$CL2LOG" 'XWC deaf-start' {phase_timeout}; then
	n1=$(last_probe "$CLLOG")
	if probe_after "$CLLOG" $n1 'ping=OK tcp=OK' {deaf}; then
		grep -q 'XWC deaf-end' "$CL2LOG" && echo "XW deaf-others-late" || echo "XW deaf-others-ok"
	else
		echo "XW deaf-others-fail"; diag 'a client stopped reading and the others stopped too'
	fi
	wait_for "$CL2LOG" 'XWC deaf-end' {phase_timeout}
	n2=$(last_probe "$CL2LOG")
	if probe_after "$CL2LOG" $n2 'ping=OK tcp=OK' {phase_timeout}; then
		echo "XW deaf-recovered $(since $t8)"
	else
		echo "XW deaf-not-recovered"; diag 'the client that stopped reading was not served again'
	fi
else
	echo "XW deaf-not-started"
fi

# C4: the toolstack removes the first client's vif and attaches a new one.
t9=$(now)
if timeout 60 xl network-detach "$CLIENT" 0 >/tmp/xl-detach.log 2>&1; then
	echo "XW detach rc=0 time=$(since $t9)"
else
	echo "XW detach rc=$? time=$(since $t9)"; sed 's/^/XW xl-detach /' /tmp/xl-detach.log
fi
n=0
while xenstore-read /local/domain/$FWID/backend/vif/$CLID/0/state >/dev/null 2>&1 && [ $n -lt 30 ]; do
	n=$((n + 1)); sleep 1
done
if xenstore-read /local/domain/$FWID/backend/vif/$CLID/0/state >/dev/null 2>&1; then
	echo "XW detach-backend-left"
else
	echo "XW detach-backend-gone"
fi
n1=$(last_probe "$CLLOG")
t10=$(now)
if timeout 90 xl network-attach "$CLIENT" backend={fw} mac={client_mac} ip={client_ip} 	>/tmp/xl-attach.log 2>&1; then
	echo "XW attach rc=0 time=$(since $t10)"
else
	echo "XW attach rc=$? time=$(since $t10)"; sed 's/^/XW xl-attach /' /tmp/xl-attach.log
fi
if probe_after "$CLLOG" $((n1 + 1)) 'ping=OK tcp=OK' {phase_timeout}; then
	echo "XW reattach-ok $(since $t10) devs=$(xenstore-list /local/domain/$FWID/backend/vif/$CLID 2>/dev/null | tr '\n' ' ')"
else
	echo "XW reattach-fail"; diag 'the re-attached vif was not served'
fi

# C5: the netvm goes away and a new uplink vif comes (what a netvm restart
# or change does to the firewall's own vif 0): the clients lose dom0, then
# get it back through the new one.
t11=$(now)
if timeout 60 xl network-detach "$FW" 0 >/tmp/xl-updetach.log 2>&1; then
	echo "XW uplink-detach rc=0 time=$(since $t11)"
else
	echo "XW uplink-detach rc=$? time=$(since $t11)"; sed 's/^/XW xl-updetach /' /tmp/xl-updetach.log
fi
wait_for "$FWLOG" 'uplink: lost' 30 && echo "XW uplink-lost-logged"
n1=$(last_probe "$CLLOG")
if probe_after "$CLLOG" $n1 'ping=FAIL tcp=FAIL' {phase_timeout}; then
	echo "XW uplink-gone-ok"
else
	echo "XW uplink-gone-fail"
fi
t12=$(now)
if timeout 90 xl network-attach "$FW" mac={fw_mac} bridge=xenbr0 script=/etc/xen/scripts/vif-min \
	ip={fw_ip} >/tmp/xl-upattach.log 2>&1; then
	echo "XW uplink-attach rc=0 time=$(since $t12)"
else
	echo "XW uplink-attach rc=$? time=$(since $t12)"; sed 's/^/XW xl-upattach /' /tmp/xl-upattach.log
fi
n1=$(last_probe "$CLLOG")
if probe_after "$CLLOG" $n1 'ping=OK tcp=OK' {phase_timeout}; then
	echo "XW uplink-back-ok $(since $t12) connects=$(grep -c 'uplink: connected' "$FWLOG")"
else
	echo "XW uplink-back-fail"; diag 'the clients did not get the new uplink'
fi
status

finish
'''


def client_initramfs(cache):
    a = cpio.Archive()
    with open(os.path.join(cache, 'guest', 'busybox'), 'rb') as f:
        a.add_file('bin/busybox', f.read(), 0o755)
    with open(os.path.join(cache, 'guest', 'xen-netfront.ko'), 'rb') as f:
        a.add_file('xen-netfront.ko', f.read())
    for d in ('proc', 'sys', 'dev', 'tmp'):
        a.add_dir(d)
    a.add_file('init', CLIENT_INIT, 0o755)
    return gzip.compress(a.getvalue(), 6)


def overlay(cache, fw_image, fw_cmdline='', qdb_timeout=60, qrexec_timeout=60,
            uplink_timeout=30, phase_timeout=60):
    """The gzip'd cpio archive with everything of this run (see module doc)."""
    world, netvm, fw, client = world_objects()
    client2 = client2_object()

    def rules(vm, action):
        return ' '.join(shlex.quote(c) for c in rule_commands(world, vm, [action], 'drop'))

    fmt = dict(fw=FW_NAME, client=CLIENT_NAME, client2=CLIENT2_NAME, netvm_ip=netvm.ip,
               fw_ip=fw.ip, fw_mac=FW_UPLINK_MAC, client_ip=client.ip, client_mac=CLIENT_MAC,
               client2_ip=client2.ip, port=TCP_PORT, stream=STREAM_PORT, deaf=DEAF_SECONDS,
               qdb_timeout=qdb_timeout, qrexec_timeout=qrexec_timeout,
               uplink_timeout=uplink_timeout, phase_timeout=phase_timeout,
               rules_accept=rules(client, 'action=accept'),
               rules_drop=rules(client, 'action=drop'),
               rules2_accept=rules(client2, 'action=accept'))
    a = cpio.Archive()
    a.add_file('xenworld/run.sh', RUN_SH.format(**fmt), 0o755)
    a.add_file('xenworld/tcp-reply.sh', TCP_REPLY, 0o755)
    a.add_file('xenworld/tcp-stream.sh', TCP_STREAM, 0o755)
    with open(fw_image, 'rb') as f:
        a.add_file('xenworld/qubes-firewall.xen', f.read())
    for name in ('qubesdb-dom0', 'qrexec-dom0'):
        p = os.path.join(cache, 'bin', name)
        if os.path.exists(p):
            with open(p, 'rb') as f:
                a.add_file('xenworld/bin/' + name, f.read(), 0o755)
    a.add_file('xenworld/fw.cfg', FW_CFG.format(name=FW_NAME, cmdline=fw_cmdline,
                                                mem=FW_MEMORY_MB, mac=FW_UPLINK_MAC, ip=fw.ip))
    for cfg, vm, peer in (('client.cfg', client, client2), ('client2.cfg', client2, client)):
        a.add_file('xenworld/' + cfg, CLIENT_CFG.format(
            name=vm.name, ip=vm.ip, gw=fw.ip, target=netvm.ip, port=TCP_PORT, fw=FW_NAME,
            mac=vm.mac, peer=peer.ip, stream=STREAM_PORT, deaf=DEAF_SECONDS))
    a.add_file('xenworld/fw.qdb', qdb_keys_file(world, fw, netvm))
    a.add_file('xenworld/client.cpio.gz', client_initramfs(cache))
    return gzip.compress(a.getvalue(), 6)
