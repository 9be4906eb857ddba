"""Harness of the real-Xen test tier (docs/xen-tier.md): Xen 4.17 + a busybox
dom0 under QEMU TCG, built from Debian .debs by scripts/xen-image.

* cpio     -- initramfs archives without the cpio tool
* qemu     -- one boot (serial console collected, time-stamped), one retry
* scenario -- what dom0 does in the test: run.sh, xl configs, QubesDB keys
Standard library only (Debian python3).
"""
