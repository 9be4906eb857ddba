/* console.c — see console.h. The ring is shared with xenconsoled: our
 * out_prod is a private copy (never re-read from the page), out_cons is
 * read once per flush and an impossible value makes us treat the ring as
 * full rather than trust it. */
#include "pvh/console.h"

#include <stdarg.h>

#include "base/fmt.h"
#include "base/libc.h"
#include "pvh/cpu.h"
#include "pvh/hypercall.h"
#include "pvh/xen_abi.h"

#define DEBUG_PORT 0xe9u
#define COM1 0x3f8u
#define COM1_SPIN_MAX 100000u
#define LINE_MAX 512u

enum console_mode { CONSOLE_BUFFERED, CONSOLE_PORTS, CONSOLE_XEN };

static enum console_mode mode = CONSOLE_BUFFERED;
static char buf[CONSOLE_BUFFER_SIZE];
static size_t buf_head, buf_len;
static uint64_t dropped_total, dropped_unreported;
static bool com1_present;
static volatile struct xencons_interface *ring;
static uint32_t ring_prod;
static evtchn_port_t ring_port;
static bool cr_sent; /* '\r' already written for the '\n' at the buffer head */

static void com1_init(void)
{
	cpu_outb(COM1 + 7, 0xae); /* scratch register: is a UART there? */
	if (cpu_inb(COM1 + 7) != 0xae)
		return;
	cpu_outb(COM1 + 1, 0x00); /* no interrupts */
	cpu_outb(COM1 + 3, 0x80); /* DLAB */
	cpu_outb(COM1 + 0, 0x01); /* 115200 baud */
	cpu_outb(COM1 + 1, 0x00);
	cpu_outb(COM1 + 3, 0x03); /* 8N1 */
	cpu_outb(COM1 + 2, 0xc7); /* FIFO on, cleared */
	com1_present = true;
}

static void ports_putc(char c)
{
	cpu_outb(DEBUG_PORT, (uint8_t)c);
	if (!com1_present)
		return;
	for (uint32_t i = 0; i < COM1_SPIN_MAX; i++) {
		if (cpu_inb(COM1 + 5) & 0x20) {
			cpu_outb(COM1, (uint8_t)c);
			return;
		}
	}
	com1_present = false; /* a UART that never drains: stop using it */
}

static void ports_write(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		ports_putc(s[i]);
}

static void buf_drop_head(size_t n)
{
	buf_head = (buf_head + n) % CONSOLE_BUFFER_SIZE;
	buf_len -= n;
}

static void buf_append(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[(buf_head + buf_len + i) % CONSOLE_BUFFER_SIZE] = s[i];
	buf_len += len;
}

void console_write(const char *s, size_t len)
{
	if (mode == CONSOLE_PORTS) {
		ports_write(s, len);
		return;
	}
	if (dropped_unreported) {
		char marker[64];
		int n = fmt_snprintf(marker, sizeof(marker), "[console: %llu bytes dropped]\n",
				     (unsigned long long)dropped_unreported);
		if (n > 0 && (size_t)n < sizeof(marker) &&
		    CONSOLE_BUFFER_SIZE - buf_len >= (size_t)n + len) {
			buf_append(marker, (size_t)n);
			dropped_unreported = 0;
		}
	}
	if (dropped_unreported || CONSOLE_BUFFER_SIZE - buf_len < len) {
		dropped_total += len;
		dropped_unreported += len;
		return;
	}
	buf_append(s, len);
}

static void ports_drain(void)
{
	while (buf_len) {
		ports_putc(buf[buf_head]);
		buf_drop_head(1);
	}
}

/* Copies as much as fits into the ring; true when something moved. */
static bool ring_push(void)
{
	uint32_t cons = __atomic_load_n(&ring->out_cons, __ATOMIC_ACQUIRE);
	uint32_t used = ring_prod - cons;
	uint32_t start = ring_prod;

	if (used > XENCONS_OUT_SIZE) /* impossible from an honest reader */
		return false;
	while (buf_len && ring_prod - cons < XENCONS_OUT_SIZE) {
		char c = buf[buf_head];
		if (c == '\n' && !cr_sent) {
			ring->out[ring_prod++ & (XENCONS_OUT_SIZE - 1)] = '\r';
			cr_sent = true;
			continue;
		}
		ring->out[ring_prod++ & (XENCONS_OUT_SIZE - 1)] = c;
		cr_sent = false;
		buf_drop_head(1);
	}
	if (ring_prod == start)
		return false;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	ring->out_prod = ring_prod;
	return true;
}

void console_flush(void)
{
	switch (mode) {
	case CONSOLE_PORTS:
		ports_drain();
		break;
	case CONSOLE_XEN:
		if (ring_push())
			(void)hypercall_evtchn_send(ring_port);
		break;
	case CONSOLE_BUFFERED:
		break;
	}
}

static bool ring_drained(void)
{
	return buf_len == 0 && __atomic_load_n(&ring->out_cons, __ATOMIC_ACQUIRE) == ring_prod;
}

void console_flush_sync(void)
{
	switch (mode) {
	case CONSOLE_BUFFERED:
		/* Nothing chosen yet (very early crash): the debug port is safe
		 * both under Xen and QEMU. */
		while (buf_len) {
			cpu_outb(DEBUG_PORT, (uint8_t)buf[buf_head]);
			buf_drop_head(1);
		}
		break;
	case CONSOLE_PORTS:
		ports_drain();
		break;
	case CONSOLE_XEN:
		/* Until xenconsoled has read everything: the domain may be
		 * destroyed right after this, taking an unread ring with it. */
		for (uint32_t i = 0; i < CONSOLE_SYNC_MAX_YIELDS && !ring_drained(); i++) {
			console_flush();
			if (!ring_drained())
				(void)hypercall_sched_yield();
		}
		break;
	}
}

void console_use_debug_ports(void)
{
	com1_init();
	mode = CONSOLE_PORTS;
	ports_drain();
}

bool console_use_xen_ring(void)
{
	uint64_t pfn, port;

	if (hypercall_hvm_get_param(HVM_PARAM_CONSOLE_PFN, &pfn) != 0 ||
	    hypercall_hvm_get_param(HVM_PARAM_CONSOLE_EVTCHN, &port) != 0)
		return false;
	if (pfn == 0 || pfn >= (1ull << 20) || port == 0 || port > UINT32_MAX)
		return false; /* only the identity-mapped first 4 GiB are usable */
	ring = (volatile struct xencons_interface *)cpu_phys(pfn << 12);
	ring_port = (evtchn_port_t)port;
	/* Continue where the domain builder's producer index is; the ring
	 * belongs to xenconsoled as much as to us, never reset it. */
	ring_prod = ring->out_prod;
	mode = CONSOLE_XEN;
	console_flush();
	return true;
}

bool console_on_xen_ring(void)
{
	return mode == CONSOLE_XEN;
}

static void console_vprintf(const char *fmt, va_list ap)
{
	char line[LINE_MAX];
	int n = fmt_vsnprintf(line, sizeof(line), fmt, ap);

	if (n < 0)
		return;
	console_write(line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

void console_printf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	console_vprintf(fmt, ap);
	va_end(ap);
}

void console_printf_sync(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	console_vprintf(fmt, ap);
	va_end(ap);
	console_flush_sync();
}

uint64_t console_dropped_bytes(void)
{
	return dropped_total;
}
