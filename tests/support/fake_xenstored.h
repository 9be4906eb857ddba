/* fake_xenstored.h — a tiny in-process XenStore server for host tests: a
 * store of nodes, watches (fired at once on registration and on every
 * change at or below the watched path, including removal), READ, WRITE,
 * MKDIR, RM (recursive), DIRECTORY, WATCH, UNWATCH, GET_DOMAIN_PATH and
 * TRANSACTION_START/END, speaking the xs_wire protocol (xen-platform.md
 * §6.2) over fake_stream pairs, so the real xen/xenstore.h client talks to
 * it.
 *
 * Each connection belongs to a domain: its relative paths are under
 * /local/domain/<domid>/, and watch events of a relative watch come back
 * relative. Transactions are accepted but not isolated (operations apply at
 * once). No permissions. The test side reads and writes the store directly
 * (firing watches) and can observe every write through a hook.
 * Host-only test code: never linked into the unikernel. */
#ifndef TESTS_FAKE_XENSTORED_H
#define TESTS_FAKE_XENSTORED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/stream.h"

#define FAKE_XSD_NODES 1024u
#define FAKE_XSD_PATH_MAX 192u
#define FAKE_XSD_VALUE_MAX 256u
#define FAKE_XSD_CONNS 4u
#define FAKE_XSD_WATCHES 512u

/* Called for every successful write (value, len) and removal (value NULL)
 * of a node, by a client or by the test; abs_path is absolute. */
typedef void (*fake_xsd_hook_fn)(void *ctx, unsigned domid, const char *abs_path,
				 const char *value, size_t len);

/* Empties the store, drops every connection and watch, clears the hook. */
void fake_xsd_reset(void);

/* A new connection for domain domid; *client gets the client end of the
 * stream (pass it to xs_client_attach). Returns the connection index, or -1
 * when all FAKE_XSD_CONNS are used. */
int fake_xsd_connect(unsigned domid, struct stream *client);
/* The server hangs up connection conn (the client sees STREAM_CLOSED). */
void fake_xsd_hangup(int conn);

/* Handles every complete request waiting on every connection (replies and
 * watch events are queued to the clients). Returns the requests handled. */
size_t fake_xsd_poll(void);

/* Test-side access with absolute paths; writes and removals fire watches
 * like a client's would. */
bool fake_xsd_write(const char *path, const char *value);
bool fake_xsd_read(const char *path, char *buf, size_t cap);
bool fake_xsd_exists(const char *path);
bool fake_xsd_rm(const char *path);
/* Node count (for leak checks). */
size_t fake_xsd_node_count(void);

/* Watches registered by connection conn (-1: all connections). */
size_t fake_xsd_watch_count(int conn);

void fake_xsd_set_hook(fake_xsd_hook_fn fn, void *ctx);

/* Writes what libxl writes for a vif (xen-platform.md §8.2): the backend
 * directory /local/domain/<be>/backend/vif/<fe>/<devid> (frontend,
 * frontend-id, online 1, state 1, mac, handle, hotplug-status "") and the
 * frontend directory /local/domain/<fe>/device/vif/<devid> (backend,
 * backend-id, state 1, handle, mac). */
void fake_xsd_add_vif(unsigned be, unsigned fe, unsigned devid, const char *mac);

/* Requests handled per type since reset (index = xs_wire type). */
uint64_t fake_xsd_requests(unsigned type);

#endif
