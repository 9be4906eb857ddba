"""Simulated dom0 for the sim test tier.

Each module is a stand-in for one dom0 component, speaking the real wire format
over Unix sockets (qubes-core-vchan-socket naming for vchans):

* qubesdb  -- dom0's per-VM qubesdb-daemon (vchan server, port 111)
* xenstore -- xenstored over one Unix socket (xs_wire framing)
* qrexec   -- dom0's qrexec-daemon + qrexec-client (control client on 512,
              data server on 513..768)
* world    -- data describing a Qubes world the way qubesd/libxl write it

Facts come from /work/shared/specs/qubes-protocols.md and xen-platform.md.
Standard library only (Debian python3).
"""
