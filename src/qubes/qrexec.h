/* qrexec.h — the qrexec agent of the firewall qube (spec §3): the control
 * channel with dom0's qrexec-daemon (vchan server, port 512) and a few data
 * channels (vchan clients) on which the built-in services answer.
 *
 * Written against base/stream.h only; the platform supplies the accepted
 * control stream and a connector that opens data streams. Nothing here
 * waits: networking never depends on qrexec. An EOF or a protocol error on
 * the control channel closes it and the agent waits for the owner to attach
 * a new one; the firewall never stops because of qrexec.
 *
 * Services (matched on the service name, any "+argument" and source):
 *   qubes.WaitForSession  exit 0 at once
 *   qubes.SetDateTime     one line of `date -u -Iseconds` on stdin
 *                         (2015-07-31T16:10:43+0000, +00:00 or Z accepted)
 *                         -> clock_set_wall, exit 0; bad input -> exit 1
 *   qubes.FirewallStatus  stdout = the application's status text, exit 0
 *   anything else         stderr "service X not supported by
 *                         qubes-c-firewall", exit 127
 * Every data channel ends with STDOUT EOF, STDERR EOF, EXIT_CODE (only
 * EXIT_CODE for MSG_JUST_EXEC, as the Linux agent does), then the data
 * stream is closed and MSG_CONNECTION_TERMINATED goes to dom0. */
#ifndef QUBES_QREXEC_H
#define QUBES_QREXEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/stream.h"

#define QREXEC_CONTROL_PORT 512u
#define QREXEC_PROTOCOL_VERSION 3u /* highest we speak; 2 also supported */
#define QREXEC_PROTOCOL_MIN 2u
#define QREXEC_HDR_LEN 8u

enum qrexec_msg_type {
	QREXEC_MSG_DATA_STDIN = 0x190,
	QREXEC_MSG_DATA_STDOUT = 0x191,
	QREXEC_MSG_DATA_STDERR = 0x192,
	QREXEC_MSG_DATA_EXIT_CODE = 0x193,
	QREXEC_MSG_EXEC_CMDLINE = 0x200,
	QREXEC_MSG_JUST_EXEC = 0x201,
	QREXEC_MSG_SERVICE_CONNECT = 0x202,
	QREXEC_MSG_SERVICE_REFUSED = 0x203,
	QREXEC_MSG_TRIGGER_SERVICE = 0x210,
	QREXEC_MSG_CONNECTION_TERMINATED = 0x211,
	QREXEC_MSG_TRIGGER_SERVICE3 = 0x212,
	QREXEC_MSG_TRIGGER_SERVICE4 = 0x213,
	QREXEC_MSG_HELLO = 0x300,
};

/* Limits. Data bodies above the negotiated chunk are a protocol error
 * (§3.2); an exec body above 8 + QREXEC_MAX_CMD_LEN is dropped; a command
 * line longer than QREXEC_CMDLINE_MAX is answered with exit code 127. */
#define QREXEC_CHUNK_V2 4096u
#define QREXEC_CHUNK_V3 65536u
#define QREXEC_MAX_CMD_LEN 65535u
#define QREXEC_CMDLINE_MAX 1024u  /* kept bytes of a command line, NUL included */
#define QREXEC_MAX_CHANNELS 4u    /* concurrent data channels; more are refused */
#define QREXEC_STATUS_MAX 4096u   /* qubes.FirewallStatus output */
#define QREXEC_STDERR_MAX 256u
#define QREXEC_LINE_MAX 64u       /* qubes.SetDateTime input line */
#define QREXEC_CHANNEL_TIMEOUT_NS (60ull * 1000000000ull)
#define QREXEC_EXIT_NOT_FOUND 127

/* Opens a data channel as vchan client to (domid, port). Returns false when
 * it cannot (the request is then answered with CONNECTION_TERMINATED only).
 * The stream may still be connecting: reads return 0 until it is up. */
struct qrexec_connector {
	bool (*connect)(void *ctx, uint32_t domid, uint32_t port, struct stream *out);
	void *ctx;
};

/* Application hooks. firewall_status fills buf (cap bytes) with text and
 * returns its length (clipped to cap); NULL = empty status. */
struct qrexec_services {
	size_t (*firewall_status)(void *ctx, char *buf, size_t cap);
	void *ctx;
};

enum qrexec_state {
	QREXEC_WAITING = 0, /* no control stream: attach the next accepted one */
	QREXEC_HELLO,       /* our HELLO sent, waiting for dom0's */
	QREXEC_READY,
};

enum qrexec_service {
	QREXEC_SVC_UNKNOWN = 0,
	QREXEC_SVC_WAIT_FOR_SESSION,
	QREXEC_SVC_SET_DATE_TIME,
	QREXEC_SVC_FIREWALL_STATUS,
};

/* Internal state of one data channel (exposed for sizing only). */
struct qrexec_channel {
	bool used;
	bool just_exec;
	bool hello_sent;
	bool hello_done;
	bool running;      /* the service produced its result; output follows */
	bool stdin_eof;
	bool line_done;
	bool line_overflow;
	struct stream s;
	uint32_t domid;
	uint32_t port;
	uint32_t version;
	uint32_t session; /* control session that asked for it */
	enum qrexec_service svc;
	uint64_t start_ns;
	/* input framing */
	uint8_t hdr[QREXEC_HDR_LEN];
	size_t hdr_have;
	uint32_t body_type;
	uint32_t body_left;
	bool in_body;
	uint8_t hello_body[4];
	size_t hello_have;
	/* qubes.SetDateTime */
	char line[QREXEC_LINE_MAX];
	size_t line_len;
	/* output */
	unsigned step;
	char out[QREXEC_STATUS_MAX];
	size_t out_len, out_sent;
	char err[QREXEC_STDERR_MAX];
	size_t err_len, err_sent;
	int32_t exit_code;
};

struct qrexec_agent {
	struct qrexec_connector connector;
	struct qrexec_services services;
	enum qrexec_state state;
	struct stream control;
	bool attached;
	bool dead;
	uint32_t version;     /* negotiated on the control channel */
	uint32_t session;     /* counts attached control streams */
	/* control input */
	uint8_t hdr[QREXEC_HDR_LEN];
	size_t hdr_have;
	bool in_body;
	uint32_t body_type;
	uint32_t body_len;
	uint32_t body_have;
	uint8_t body[8 + QREXEC_CMDLINE_MAX];
	/* control output: HELLO and CONNECTION_TERMINATED only */
	uint8_t tx[256];
	size_t tx_len;
	size_t tx_partial;
	struct qrexec_channel ch[QREXEC_MAX_CHANNELS];
	/* counters */
	uint64_t refused;
	uint64_t bad_messages;
	uint64_t commands;
};

void qrexec_init(struct qrexec_agent *a, const struct qrexec_connector *conn,
		 const struct qrexec_services *svc);

/* Takes an accepted control stream: sends our HELLO (the agent speaks
 * first, §3.3) and waits for dom0's. Closes a previous one if any. */
void qrexec_attach(struct qrexec_agent *a, struct stream control);

/* Runs the control channel and every data channel. Returns true when work
 * is left (a budget ran out): call again without waiting for an event. */
bool qrexec_poll(struct qrexec_agent *a, uint64_t now_ns);

/* Closes every stream (shutdown). */
void qrexec_close(struct qrexec_agent *a);

enum qrexec_state qrexec_state(const struct qrexec_agent *a);
uint32_t qrexec_version(const struct qrexec_agent *a);
size_t qrexec_active_channels(const struct qrexec_agent *a);

/* Parses `date -u -Iseconds` output (no newline): YYYY-MM-DDTHH:MM:SS then
 * Z, +HHMM, +HH:MM, -HHMM or -HH:MM. Years 1970-9999. False on anything
 * else. */
bool qrexec_parse_datetime(const char *s, size_t len, uint64_t *epoch_ns);

/* Service named by a command line "user:QUBESRPC name[+arg] source" (the
 * user part and a "nogui:" prefix are optional). name/name_len: the
 * service name (or the whole command for a non-RPC command). */
enum qrexec_service qrexec_parse_cmdline(const char *cmd, size_t len, const char **name,
					 size_t *name_len);

#endif
