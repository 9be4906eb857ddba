/* app.c — wiring: control plane → configuration → router → devices.
 *
 * Must never: block, allocate after app_init, let one vif's slow or broken
 * bring-up hold up another, issue more XenStore requests than the client's
 * in-flight bound (the scan is a queue drained a few at a time), or send
 * QubesDB anything dom0 would find fatal (qubesdb.c refuses it). */
#include "app/app.h"

#include "app/platform.h"
#include "base/base64.h"
#include "base/csprng.h"
#include "base/clock.h"
#include "base/fmt.h"
#include "base/libc.h"
#include "base/log.h"
#include "fw/conntrack.h"
#include "fw/resolver.h"
#include "fw/router.h"
#include "fw/rules.h"
#include "qubes/netcfg.h"
#include "qubes/qrexec.h"
#include "qubes/qubesdb.h"
#include "xen/netdev.h"
#include "xen/xenstore.h"

#define RETRY_NS (100ull * NS_PER_MS)
#define TICK_NS (100ull * NS_PER_MS)
#define SCAN_JOBS 128u
#define SCAN_IN_FLIGHT 8u
#define DEFAULT_MAX_CLIENTS 32u
#define VIF_PATH_MAX 48u
#define VIF_IP_TEXT 96u
#define VIF_MAC_TEXT 24u

enum vif_state {
	VIF_FREE = 0,
	VIF_PROBING, /* ip and mac being read */
	VIF_WAITING, /* read, but its address is still held by another vif */
	VIF_ACTIVE,
};

struct vif {
	uint8_t state;
	uint32_t domid, devid;
	uint32_t seen_gen;
	uint8_t reads_left;
	bool read_failed;
	char ip_text[VIF_IP_TEXT];
	char mac_text[VIF_MAC_TEXT];
	bool has4, has6;
	struct ip_addr ip4, ip6;
	uint8_t mac[6];
	int dev;
	int rid;
	struct rule_set *rules[2];
	uint32_t handled[2];
};

enum job_kind {
	JOB_LIST_DOMIDS,
	JOB_LIST_DEVIDS,
	JOB_READ_IP,
	JOB_READ_MAC,
};

struct scan_job {
	uint8_t kind;
	uint32_t gen;
	uint32_t domid;
	uint32_t vif; /* JOB_READ_*: index into app->vifs */
	struct app *app;
};

struct app {
	struct app_config cfg;
	uint32_t max_vifs;
	struct router *router;
	struct resolver *res;
	struct xs_client *xs;
	bool xs_watching;
	xs_watch_id vif_watch;
	struct qdb qdb;
	struct qrexec_agent *qrexec;
	uint64_t now;
	uint64_t next_xs_try, next_qdb_try, next_uplink_try, next_tick;

	bool has_net;
	bool net_dirty;
	struct router_net_config net;
	bool uplink_up;
	bool iptables_error_written;
	bool error_reported; /* /qubes-iptables-error holds a rule error */

	struct vif *vifs;
	struct rule_set *set_pool;
	struct rule_set **free_sets;
	uint32_t n_free_sets;

	/* The vif scan: a queue of XenStore reads, drained a few at a time. */
	bool scan_wanted, scan_running, scan_incomplete;
	uint32_t scan_gen;
	uint32_t scan_outstanding;
	struct scan_job jobs[SCAN_JOBS];
	uint32_t job_head, job_count;
	struct scan_job in_flight_jobs[SCAN_IN_FLIGHT];
};

/* ---- sizing --------------------------------------------------------------- */

static uint32_t max_vifs_of(const struct app_config *cfg)
{
	return cfg->max_clients ? cfg->max_clients : DEFAULT_MAX_CLIENTS;
}

static void router_cfg_of(const struct app_config *cfg, struct router_config *rc)
{
	router_config_default(rc);
	rc->max_clients = max_vifs_of(cfg);
	rc->conntrack_size = cfg->cmdline.nat_table_size;
}

/* Rule sets: two per vif (one per family) plus one being parsed. */
static uint32_t n_sets_of(const struct app_config *cfg)
{
	return 2 * max_vifs_of(cfg) + 1;
}

static void resolver_cfg_of(const struct app_config *cfg, struct resolver_config *rc)
{
	resolver_config_default(rc);
	/* A reload registers the new set before the old one goes. */
	rc->max_sets = n_sets_of(cfg);
}

size_t app_memory_needed(const struct app_config *cfg)
{
	struct router_config rc;
	router_cfg_of(cfg, &rc);
	size_t n = sizeof(struct app) + 64;
	n += router_memory_needed(&rc);
	n += sizeof(struct xs_client) + 64;
	n += sizeof(struct qrexec_agent) + 64;
	n += qdb_mem_size(QDB_DEFAULT_MAX_KEYS, QDB_DEFAULT_VALUE_BYTES) + 64;
	n += sizeof(struct vif) * max_vifs_of(cfg) + 64;
	struct resolver_config rcfg;
	resolver_cfg_of(cfg, &rcfg);
	n += resolver_memory_needed(&rcfg) + 64;
	n += (sizeof(struct rule_set) + sizeof(struct rule_set *)) * n_sets_of(cfg) + 128;
	return n;
}

/* ---- small helpers ---------------------------------------------------------- */

static struct rule_set *set_alloc(struct app *a)
{
	return a->n_free_sets ? a->free_sets[--a->n_free_sets] : NULL;
}

static void set_free(struct app *a, struct rule_set *s)
{
	if (s)
		a->free_sets[a->n_free_sets++] = s;
}

static void write_own_key(struct app *a, const char *path, const char *value)
{
	if (qdb_state(&a->qdb) == QDB_DISCONNECTED)
		return;
	enum qdb_result r = qdb_write(&a->qdb, path, value, strlen(value));
	if (r != QDB_OK)
		log_warn("qubesdb: could not write %s (%d)", path, r);
}

/* ---- rules ------------------------------------------------------------------ */

static const struct ip_addr *vif_addr(const struct vif *v, bool v6)
{
	if (v6)
		return v->has6 ? &v->ip6 : NULL;
	return v->has4 ? &v->ip4 : NULL;
}

static void handled_path(char *path, size_t cap, const struct vif *v, bool v6)
{
	fmt_snprintf(path, cap, "/qubes-firewall-handled/%s", IP_STR(vif_addr(v, v6)));
}

static void write_handled(struct app *a, struct vif *v, bool v6)
{
	char path[QDB_MAX_PATH + 8], value[16];
	handled_path(path, sizeof(path), v, v6);
	fmt_snprintf(value, sizeof(value), "%u", v->handled[v6]);
	write_own_key(a, path, value);
}

/* The counter continues from what QubesDB holds (as the Linux firewall
 * does), so it keeps growing across vif re-attachment and our restarts. */
static uint32_t handled_next(struct app *a, const struct vif *v, bool v6)
{
	char path[QDB_MAX_PATH + 8];
	const uint8_t *val;
	size_t len;
	uint32_t n = v->handled[v6];
	handled_path(path, sizeof(path), v, v6);
	if (qdb_get(&a->qdb, path, &val, &len) && len > 0 && len < 10) {
		uint32_t stored = 0;
		size_t i = 0;
		while (i < len && val[i] >= '0' && val[i] <= '9')
			stored = stored * 10 + (uint32_t)(val[i++] - '0');
		if (i == len && stored > n)
			n = stored;
	}
	return n + 1;
}

static bool any_rules_failed(const struct app *a)
{
	for (uint32_t i = 0; i < a->max_vifs; i++)
		for (int f = 0; f < 2; f++)
			if (a->vifs[i].state == VIF_ACTIVE && a->vifs[i].rules[f] &&
			    a->vifs[i].rules[f]->failed)
				return true;
	return false;
}

/* Loads /qubes-firewall/<addr>/ for one family of an active vif, if dom0
 * has committed it (the base key exists). */
static void load_rules(struct app *a, struct vif *v, bool v6)
{
	const struct ip_addr *addr = vif_addr(v, v6);
	if (!addr || v->state != VIF_ACTIVE)
		return;
	char base[QDB_MAX_PATH + 8], prefix[QDB_MAX_PATH + 8];
	fmt_snprintf(base, sizeof(base), "/qubes-firewall/%s", IP_STR(addr));
	fmt_snprintf(prefix, sizeof(prefix), "%s/", base);
	const uint8_t *val;
	size_t len;
	if (!qdb_get(&a->qdb, base, &val, &len))
		return; /* not committed yet: the client stays at drop-all */

	static struct rules_entry entries[RULES_MAX + 8];
	size_t n = 0;
	bool too_many = false;
	struct qdb_iter it;
	const char *path;
	qdb_iter_init(&it, prefix);
	while (qdb_iter_next(&a->qdb, &it, &path, &val, &len)) {
		if (n == ARRAY_LEN(entries)) {
			too_many = true;
			break;
		}
		const char *suffix = path + strlen(prefix);
		entries[n++] = (struct rules_entry){suffix, strlen(suffix), (const char *)val, len};
	}
	struct rule_set *set = set_alloc(a);
	if (!set) {
		log_error("client %s: no rule-set storage left", IP_STR(addr));
		return;
	}
	enum rule_family fam = v6 ? RULE_FAMILY_V6 : RULE_FAMILY_V4;
	if (too_many)
		rules_set_failed(set, fam, "more keys than the rule limit");
	else
		rules_parse(set, fam, entries, n, a->net.dns, a->has_net ? 2 : 0);
	if (v->rules[v6])
		rules_hostsets_inherit(set, v->rules[v6]);
	/* Register the new set before the router uses it, so its names are
	 * filled from the cache at once; forget the old one before reuse. */
	if (!set->failed && set->n_hosts && !resolver_register_set(a->res, set, a->now))
		log_warn("client %s: no resolver slot; its host names stay unresolved", IP_STR(addr));
	router_set_rules(a->router, v->rid, v6, set);
	if (v->rules[v6])
		resolver_unregister_set(a->res, v->rules[v6]);
	set_free(a, v->rules[v6]);
	v->rules[v6] = set;
	if (set->failed) {
		log_error("client %s: rules rejected, dropping all its traffic: %s", IP_STR(addr),
			  set->error);
		write_own_key(a, "/qubes-iptables-error", set->error);
		a->error_reported = true;
	} else {
		log_info("client %s: %u rule%s loaded, policy %s", IP_STR(addr), set->n_rules,
			 set->n_rules == 1 ? "" : "s",
			 rules_action_name((enum rule_action)set->policy));
	}
	v->handled[v6] = handled_next(a, v, v6);
	write_handled(a, v, v6);
	if (a->error_reported && !any_rules_failed(a)) {
		/* Every client's rules load again: clear the last error. */
		write_own_key(a, "/qubes-iptables-error", "");
		a->error_reported = false;
	}
}

static struct vif *vif_by_addr(struct app *a, const struct ip_addr *ip)
{
	for (uint32_t i = 0; i < a->max_vifs; i++) {
		struct vif *v = &a->vifs[i];
		if (v->state != VIF_ACTIVE)
			continue;
		if ((v->has4 && ip_equal(&v->ip4, ip)) || (v->has6 && ip_equal(&v->ip6, ip)))
			return v;
	}
	return NULL;
}

/* ---- vifs ------------------------------------------------------------------ */

static void vif_release(struct app *a, struct vif *v)
{
	if (v->state == VIF_ACTIVE) {
		log_info("client %u.%u (%s) detached", v->domid, v->devid, v->ip_text);
		router_remove_client(a->router, v->rid);
		platform_client_close(v->dev);
	}
	for (int f = 0; f < 2; f++)
		if (v->rules[f])
			resolver_unregister_set(a->res, v->rules[f]);
	set_free(a, v->rules[0]);
	set_free(a, v->rules[1]);
	memset(v, 0, sizeof(*v));
}

/* Both reads of a probing vif are done: bring it up if it is complete. */
static void vif_try_activate(struct app *a, struct vif *v)
{
	if (v->read_failed || !netcfg_parse_vif_ip(v->ip_text, strlen(v->ip_text), &v->has4, &v->ip4,
						   &v->has6, &v->ip6)) {
		if (!v->read_failed)
			log_warn("client %u.%u: ignoring vif with unusable ip \"%s\"", v->domid, v->devid,
				 v->ip_text);
		v->state = VIF_FREE;
		return;
	}
	if (!netdev_parse_mac(v->mac_text, v->mac)) {
		/* A missing or unreadable MAC: a random locally administered one
		 * still lets us reach a point-to-point link. */
		log_warn("client %u.%u: bad mac \"%s\", using a random one", v->domid, v->devid,
			 v->mac_text);
		for (int i = 0; i < 6; i++)
			v->mac[i] = (uint8_t)(0x40 + i + v->domid);
		v->mac[0] = 0x02;
	}
	char path[VIF_PATH_MAX];
	fmt_snprintf(path, sizeof(path), "backend/vif/%u/%u", v->domid, v->devid);
	uint32_t cookie = (uint32_t)(v - a->vifs);
	struct router_client_params p = {
		.domid = v->domid, .devid = v->devid, .has_ip4 = v->has4, .has_ip6 = v->has6,
		.ip4 = v->ip4, .ip6 = v->ip6, .mtu = 1500, .transmit = platform_client_transmit,
	};
	memcpy(p.mac, v->mac, 6);
	/* The router refuses an address another vif still holds (the old vif
	 * of a restarting client): wait for the next scan. */
	if ((v->has4 && vif_by_addr(a, &v->ip4)) || (v->has6 && vif_by_addr(a, &v->ip6))) {
		v->state = VIF_WAITING;
		return;
	}
	int dev = platform_client_open(v->domid, v->devid, path, a->xs, cookie);
	if (dev < 0) {
		log_warn("client %u.%u: could not open its device", v->domid, v->devid);
		v->state = VIF_FREE;
		return;
	}
	/* The platform names its devices by small integers; the router carries
	 * the handle through its opaque context pointer. */
	p.transmit_ctx = (void *)(intptr_t)dev; /* NOLINT(performance-no-int-to-ptr) */
	int rid = router_add_client(a->router, &p);
	if (rid < 0) {
		platform_client_close(dev);
		v->state = VIF_WAITING;
		return;
	}
	v->dev = dev;
	v->rid = rid;
	v->state = VIF_ACTIVE;
	log_info("client %u.%u (%s) attached", v->domid, v->devid, v->ip_text);
	load_rules(a, v, false);
	load_rules(a, v, true);
}

static struct vif *vif_find(struct app *a, uint32_t domid, uint32_t devid)
{
	for (uint32_t i = 0; i < a->max_vifs; i++)
		if (a->vifs[i].state != VIF_FREE && a->vifs[i].domid == domid &&
		    a->vifs[i].devid == devid)
			return &a->vifs[i];
	return NULL;
}

static struct vif *vif_new(struct app *a)
{
	for (uint32_t i = 0; i < a->max_vifs; i++)
		if (a->vifs[i].state == VIF_FREE)
			return &a->vifs[i];
	return NULL;
}

/* ---- the XenStore scan of backend/vif ----------------------------------- */

static bool job_push(struct app *a, enum job_kind kind, uint32_t domid, uint32_t vif)
{
	if (a->job_count == SCAN_JOBS) {
		a->scan_incomplete = true;
		return false;
	}
	struct scan_job *j = &a->jobs[(a->job_head + a->job_count++) % SCAN_JOBS];
	*j = (struct scan_job){.kind = (uint8_t)kind, .gen = a->scan_gen, .domid = domid,
			       .vif = vif, .app = a};
	a->scan_outstanding++;
	return true;
}

static void scan_finish(struct app *a)
{
	a->scan_running = false;
	if (a->scan_incomplete) {
		/* Something could not be read: remove nothing on partial
		 * knowledge, look again soon. */
		a->scan_wanted = true;
		return;
	}
	for (uint32_t i = 0; i < a->max_vifs; i++) {
		struct vif *v = &a->vifs[i];
		if (v->state != VIF_FREE && v->seen_gen != a->scan_gen)
			vif_release(a, v);
	}
	for (uint32_t i = 0; i < a->max_vifs; i++)
		if (a->vifs[i].state == VIF_WAITING)
			vif_try_activate(a, &a->vifs[i]);
}

static void job_done(struct app *a)
{
	if (a->scan_outstanding && --a->scan_outstanding == 0)
		scan_finish(a);
}

static void on_devids(void *ctx, enum xs_status st, const char *data, size_t len)
{
	struct scan_job *j = ctx;
	struct app *a = j->app;
	if (st == XS_OK && j->gen == a->scan_gen) {
		size_t off = 0;
		const char *name;
		size_t nlen;
		while (xs_dir_next(data, len, &off, &name, &nlen)) {
			uint64_t devid;
			if (!xs_parse_uint(name, nlen, 0xffff, &devid))
				continue;
			struct vif *v = vif_find(a, j->domid, (uint32_t)devid);
			if (v) {
				v->seen_gen = a->scan_gen;
				continue;
			}
			v = vif_new(a);
			if (!v) {
				log_warn("client %u.%u: too many vifs, ignored", j->domid, (unsigned)devid);
				continue;
			}
			*v = (struct vif){.state = VIF_PROBING, .domid = j->domid,
					  .devid = (uint32_t)devid, .seen_gen = a->scan_gen,
					  .reads_left = 2};
			uint32_t idx = (uint32_t)(v - a->vifs);
			if (!job_push(a, JOB_READ_IP, j->domid, idx) ||
			    !job_push(a, JOB_READ_MAC, j->domid, idx)) {
				v->state = VIF_FREE;
				break;
			}
		}
	} else if (st != XS_OK && st != XS_ENOENT) {
		a->scan_incomplete = true;
	}
	j->kind = 0xff;
	job_done(a);
}

static void on_domids(void *ctx, enum xs_status st, const char *data, size_t len)
{
	struct scan_job *j = ctx;
	struct app *a = j->app;
	if (st == XS_OK && j->gen == a->scan_gen) {
		size_t off = 0;
		const char *name;
		size_t nlen;
		while (xs_dir_next(data, len, &off, &name, &nlen)) {
			uint64_t domid;
			if (xs_parse_uint(name, nlen, 0x7fef, &domid))
				job_push(a, JOB_LIST_DEVIDS, (uint32_t)domid, 0);
		}
	} else if (st != XS_OK && st != XS_ENOENT) {
		a->scan_incomplete = true;
	}
	j->kind = 0xff;
	job_done(a);
}

static void on_vif_read(void *ctx, enum xs_status st)
{
	struct scan_job *j = ctx;
	struct app *a = j->app;
	struct vif *v = &a->vifs[j->vif];
	bool mac = j->kind == JOB_READ_MAC;
	j->kind = 0xff;
	if (v->state == VIF_PROBING && j->gen == a->scan_gen) {
		/* A vif without an ip key is not for us (yet); a MAC may be absent. */
		if (st != XS_OK && !mac)
			v->read_failed = true;
		if (--v->reads_left == 0)
			vif_try_activate(a, v);
	}
	job_done(a);
}

static struct scan_job *in_flight_slot(struct app *a)
{
	for (uint32_t i = 0; i < SCAN_IN_FLIGHT; i++)
		if (a->in_flight_jobs[i].kind == 0xff)
			return &a->in_flight_jobs[i];
	return NULL;
}

/* Issues queued scan reads while the in-flight window has room. */
static void scan_pump(struct app *a)
{
	while (a->job_count) {
		struct scan_job *slot = in_flight_slot(a);
		if (!slot)
			return;
		struct scan_job *j = &a->jobs[a->job_head];
		*slot = *j;
		char path[VIF_PATH_MAX + 8];
		enum xs_status st;
		switch (j->kind) {
		case JOB_LIST_DOMIDS:
			st = xs_directory(a->xs, "backend/vif", on_domids, slot);
			break;
		case JOB_LIST_DEVIDS:
			fmt_snprintf(path, sizeof(path), "backend/vif/%u", j->domid);
			st = xs_directory(a->xs, path, on_devids, slot);
			break;
		default: {
			struct vif *v = &a->vifs[j->vif];
			bool mac = j->kind == JOB_READ_MAC;
			fmt_snprintf(path, sizeof(path), "backend/vif/%u/%u/%s", v->domid, v->devid,
				     mac ? "mac" : "ip");
			st = xs_read_str(a->xs, path, mac ? v->mac_text : v->ip_text,
					 mac ? sizeof(v->mac_text) : sizeof(v->ip_text), on_vif_read,
					 slot);
			break;
		}
		}
		if (st == XS_ERR_BUSY) {
			slot->kind = 0xff;
			return; /* try again on the next step */
		}
		a->job_head = (a->job_head + 1) % SCAN_JOBS;
		a->job_count--;
		if (st != XS_OK) {
			slot->kind = 0xff;
			a->scan_incomplete = true;
			job_done(a);
		}
	}
}

static void scan_start(struct app *a)
{
	a->scan_wanted = false;
	a->scan_running = true;
	a->scan_incomplete = false;
	a->scan_gen++;
	a->scan_outstanding = 0;
	a->job_count = 0;
	job_push(a, JOB_LIST_DOMIDS, 0, 0);
}

static void on_vif_watch(void *ctx, xs_watch_id id, const char *path, size_t len)
{
	(void)id;
	struct app *a = ctx;
	(void)path;
	(void)len;
	a->scan_wanted = true;
}

/* ---- network configuration ------------------------------------------------- */

static const char *qdb_lookup(void *ctx, const char *key, size_t *len)
{
	const uint8_t *v;
	return qdb_get(ctx, key, &v, len) ? (const char *)v : NULL;
}

static void apply_net_config(struct app *a)
{
	struct router_net_config nc;
	char why[128];
	a->net_dirty = false;
	enum netcfg_status st = netcfg_read(qdb_lookup, &a->qdb, &a->cfg.cmdline, &nc, why, sizeof(why));
	if (st != NETCFG_READY) {
		if (!a->has_net)
			log_warn("network configuration: %s; waiting", why);
		else
			log_warn("network configuration: %s; keeping the current one", why);
		return;
	}
	bool gw_changed = a->has_net && (!ip_equal(&nc.gateway4, &a->net.gateway4) ||
					 !ip_equal(&nc.our_ip4, &a->net.our_ip4));
	bool changed = !a->has_net || memcmp(&nc, &a->net, sizeof(nc)) != 0;
	if (!changed)
		return;
	bool dns_changed = a->has_net && (!ip_equal(&nc.dns[0], &a->net.dns[0]) ||
					  !ip_equal(&nc.dns[1], &a->net.dns[1]));
	a->net = nc;
	a->has_net = true;
	router_set_net_config(a->router, &nc);
	resolver_set_servers(a->res, nc.dns, 2, a->now);
	log_info("network: our address %s, netvm %s, dns %s %s%s%s", IP_STR(&nc.our_ip4),
		 IP_STR(&nc.gateway4), IP_STR(&nc.dns[0]), IP_STR(&nc.dns[1]),
		 nc.has_ip6 ? ", ipv6 " : "", nc.has_ip6 ? IP_STR(&nc.our_ip6) : "");
	if (!a->iptables_error_written) {
		write_own_key(a, "/qubes-iptables-error", "");
		a->iptables_error_written = true;
	}
	if (gw_changed && a->uplink_up) {
		/* A new netvm: rebuild the uplink towards it. */
		log_info("uplink: netvm changed, reconnecting");
		router_clear_uplink(a->router);
		platform_uplink_close();
		a->uplink_up = false;
		a->next_uplink_try = 0;
	}
	if (dns_changed)
		for (uint32_t i = 0; i < a->max_vifs; i++) {
			load_rules(a, &a->vifs[i], false);
			load_rules(a, &a->vifs[i], true);
		}
}

static void try_uplink(struct app *a)
{
	if (a->uplink_up || !a->has_net || a->now < a->next_uplink_try)
		return;
	a->next_uplink_try = a->now + RETRY_NS;
	struct router_uplink_params up = {.transmit = platform_uplink_transmit};
	if (!platform_uplink_open(a->xs, up.mac, &up.mtu))
		return;
	router_set_uplink(a->router, &up);
	a->uplink_up = true;
	resolver_retry_now(a->res, a->now);
	log_info("uplink: connected (mac %s, mtu %u)", MAC_STR(up.mac), up.mtu);
}

void app_uplink_lost(struct app *app)
{
	if (!app->uplink_up)
		return;
	log_warn("uplink: lost; will reconnect");
	router_clear_uplink(app->router);
	platform_uplink_close();
	app->uplink_up = false;
	app->next_uplink_try = app->now + RETRY_NS;
}

/* ---- QubesDB events --------------------------------------------------------- */

static bool is_net_key(const char *path)
{
	static const char *const keys[] = {"/qubes-ip", "/qubes-gateway", "/qubes-primary-dns",
					   "/qubes-secondary-dns", "/qubes-ip6", "/qubes-gateway6"};
	for (size_t i = 0; i < ARRAY_LEN(keys); i++)
		if (strcmp(path, keys[i]) == 0)
			return true;
	return false;
}

static void on_rules_commit(struct app *a, const char *path)
{
	static const char prefix[] = "/qubes-firewall/";
	size_t plen = sizeof(prefix) - 1;
	if (strncmp(path, prefix, plen) != 0)
		return;
	const char *ip = path + plen;
	size_t len = strlen(ip);
	struct ip_addr addr;
	if (memchr(ip, '/', len) || !ip_parse(ip, len, &addr))
		return;
	struct vif *v = vif_by_addr(a, &addr);
	if (!v)
		return; /* a stale subtree of a client that is not running */
	load_rules(a, v, !ip_is_v4(&addr));
}

static void rewrite_own_keys(struct app *a)
{
	if (a->iptables_error_written)
		write_own_key(a, "/qubes-iptables-error", "");
	for (uint32_t i = 0; i < a->max_vifs; i++) {
		struct vif *v = &a->vifs[i];
		if (v->state != VIF_ACTIVE)
			continue;
		for (int f = 0; f < 2; f++)
			if (vif_addr(v, f) && v->handled[f])
				write_handled(a, v, f);
	}
}

/* dom0's /qubes-random-seed (base64 of 64 random bytes) is mixed into the
 * CSPRNG on every sync: it adds to, never replaces, the platform's own
 * entropy, so a missing or malformed seed only costs a log line. */
static void mix_random_seed(struct app *a)
{
	const uint8_t *v;
	size_t len, n;
	uint8_t seed[96];
	if (!qdb_get(&a->qdb, "/qubes-random-seed", &v, &len))
		return;
	if (!base64_decode((const char *)v, len, seed, sizeof(seed), &n) || n < 16) {
		log_warn("qubesdb: /qubes-random-seed is not base64 of at least 16 bytes; ignored");
		return;
	}
	csprng_seed(seed, n);
	memset(seed, 0, sizeof(seed));
	log_info("entropy: mixed %zu bytes of /qubes-random-seed", n);
}

static void on_qdb_event(void *ctx, const struct qdb_event *ev)
{
	struct app *a = ctx;
	switch (ev->type) {
	case QDB_EV_WRITE:
	case QDB_EV_RM:
		if (is_net_key(ev->path))
			a->net_dirty = true;
		break;
	case QDB_EV_COMMIT:
		on_rules_commit(a, ev->path);
		break;
	case QDB_EV_REFUSED:
		log_error("qubesdb: key %s did not fit the store", ev->path);
		/* A client whose rules could not be stored must fail closed. */
		on_rules_commit(a, ev->path);
		break;
	case QDB_EV_SYNCED:
		log_info("qubesdb: %s (%zu keys)", ev->resync ? "resynchronised" : "connected",
			 qdb_count(&a->qdb));
		a->net_dirty = true;
		mix_random_seed(a);
		if (ev->resync)
			rewrite_own_keys(a);
		break;
	case QDB_EV_DISCONNECTED:
		log_warn("qubesdb: disconnected; reconnecting");
		a->next_qdb_try = a->now + RETRY_NS;
		break;
	}
}

/* ---- status ------------------------------------------------------------------ */

static size_t status_hook(void *ctx, char *buf, size_t cap)
{
	return app_status(ctx, buf, cap);
}

static void out_counters(struct fmt_buf *o, const struct router_counters *c)
{
	fmt_append(o, "frames in %llu out %llu", (unsigned long long)c->frames_in,
		(unsigned long long)c->frames_out);
	for (int d = 0; d < DROP_REASON_COUNT; d++)
		if (c->drops[d])
			fmt_append(o, ", %s %llu", router_drop_str((enum router_drop)d),
				(unsigned long long)c->drops[d]);
	fmt_append(o, "\n");
}

size_t app_status(struct app *a, char *buf, size_t cap)
{
	struct fmt_buf o = {buf, cap, 0};
	if (cap == 0)
		return 0;
	fmt_append(&o, "qubes-c-firewall\n");
	if (a->has_net)
		fmt_append(&o, "network: address %s, netvm %s, dns %s %s\n", IP_STR(&a->net.our_ip4),
			IP_STR(&a->net.gateway4), IP_STR(&a->net.dns[0]), IP_STR(&a->net.dns[1]));
	else
		fmt_append(&o, "network: waiting for configuration\n");
	fmt_append(&o, "uplink: %s; ", a->uplink_up ? "up" : "down");
	out_counters(&o, router_uplink_counters(a->router));
	struct ct_stats st;
	conntrack_get_stats(router_conntrack(a->router), &st);
	fmt_append(&o, "connections: %u of %u (tcp %u, udp %u, icmp %u, other %u), evicted %llu\n",
		st.in_use, st.capacity, st.per_class[CT_CLASS_TCP], st.per_class[CT_CLASS_UDP],
		st.per_class[CT_CLASS_ICMP], st.per_class[CT_CLASS_OTHER],
		(unsigned long long)st.evictions);
	const struct resolver_counters *rc = resolver_get_counters(a->res);
	fmt_append(&o, "resolver: %u in flight, %llu answers, %llu failures, %llu dropped replies, "
		    "%llu learned from clients\n",
		resolver_inflight(a->res), (unsigned long long)rc->answers,
		(unsigned long long)rc->failures,
		(unsigned long long)rc->unsolicited + rc->duplicates + rc->wrong_source +
			rc->malformed + rc->mismatched,
		(unsigned long long)rc->learned);
	if (a->xs)
		fmt_append(&o, "xenstore: %s, %zu requests in flight, %zu watches, %llu watch events, "
			    "%llu dropped, %llu protocol errors\n",
			xs_client_is_open(a->xs) ? "open" : "closed", xs_in_flight(a->xs),
			xs_watch_count(a->xs), (unsigned long long)a->xs->watch_events,
			(unsigned long long)a->xs->dropped_messages,
			(unsigned long long)a->xs->protocol_errors);
	for (uint32_t i = 0; i < a->max_vifs; i++) {
		struct vif *v = &a->vifs[i];
		if (v->state != VIF_ACTIVE)
			continue;
		fmt_append(&o, "client %u.%u %s:", v->domid, v->devid, v->ip_text);
		for (int f = 0; f < 2; f++) {
			if (!vif_addr(v, f))
				continue;
			const struct rule_set *s = v->rules[f];
			if (!s)
				fmt_append(&o, " ipv%c no rules yet (drop all);", f ? '6' : '4');
			else if (s->failed)
				fmt_append(&o, " ipv%c rules FAILED (drop all): %s;", f ? '6' : '4', s->error);
			else
				fmt_append(&o, " ipv%c %u rules, policy %s;", f ? '6' : '4', s->n_rules,
					rules_action_name((enum rule_action)s->policy));
		}
		fmt_append(&o, " ");
		out_counters(&o, router_client_counters(a->router, v->rid));
	}
	fmt_append(&o, "total: ");
	out_counters(&o, router_global_counters(a->router));
	return fmt_buf_stored(&o);
}

/* ---- set-up and the loop step ------------------------------------------------ */

/* ---- the resolver's plumbing (dsthost rules, issue 7) ------------------------ */

static bool send_dns(void *ctx, const struct ip_addr *server, uint16_t sport, uint16_t dport,
		     const uint8_t *payload, size_t len)
{
	struct app *a = ctx;
	return router_send_local_udp(a->router, server, sport, dport, payload, len);
}

static void on_local_udp(void *ctx, const struct ip_addr *src, uint16_t sport, uint16_t dport,
			 const uint8_t *payload, size_t len, uint64_t now)
{
	struct app *a = ctx;
	resolver_input(a->res, src, sport, dport, payload, len, now);
	resolver_tick(a->res, now);
}

static void on_client_dns_answer(void *ctx, int client, const uint8_t *payload, size_t len,
				 const struct ip_addr *server, uint64_t now)
{
	struct app *a = ctx;
	for (uint32_t i = 0; i < a->max_vifs; i++) {
		struct vif *v = &a->vifs[i];
		if (v->state != VIF_ACTIVE || v->rid != client)
			continue;
		struct rule_set *sets[2] = {v->rules[0], v->rules[1]};
		resolver_observe_client_answer(a->res, sets, 2, payload, len, server, now);
		return;
	}
}

/* /dns/<client ip>/<host> = the addresses, for every client whose rules
 * name the host (as the Linux firewall publishes them). */
static void on_dns_report(void *ctx, const char *name, size_t name_len,
			  const struct ip_addr *addrs, size_t n)
{
	struct app *a = ctx;
	for (uint32_t i = 0; i < a->max_vifs; i++) {
		struct vif *v = &a->vifs[i];
		for (int f = 0; v->state == VIF_ACTIVE && f < 2; f++) {
			if (!v->rules[f] || !rules_hostset_find(v->rules[f], name, name_len))
				continue;
			char path[QDB_MAX_PATH + 64], value[QDB_MAX_DATA];
			int plen = fmt_snprintf(path, sizeof(path), "/dns/%s/%.*s", IP_STR(vif_addr(v, f)),
						(int)name_len, name);
			if (plen < 0 || (size_t)plen >= QDB_MAX_PATH) {
				log_info("dns: %.*s not published for %s: path too long for QubesDB",
					 (int)name_len, name, IP_STR(vif_addr(v, f)));
				continue;
			}
			struct fmt_buf o = {value, sizeof(value), 0};
			fmt_append(&o, "%s", n ? "{" : "set()");
			size_t shown = 0;
			for (size_t k = 0; k < n; k++) {
				if (ip_is_v4(&addrs[k]) != (f == 0))
					continue;
				fmt_append(&o, "%s'%s/%u'", shown++ ? ", " : "", IP_STR(&addrs[k]), f ? 128 : 32);
			}
			if (n)
				fmt_append(&o, "}");
			write_own_key(a, path, value);
		}
	}
}

static bool connect_vchan(void *ctx, uint32_t domid, uint32_t port, struct stream *out)
{
	(void)ctx;
	return platform_vchan_connect(domid, port, out);
}

static void on_xs_closed(void *ctx)
{
	struct app *a = ctx;
	log_warn("xenstore: connection closed; reconnecting");
	a->next_xs_try = a->now + RETRY_NS;
}

struct app *app_init(struct arena *ar, const struct app_config *cfg)
{
	struct app *a = arena_alloc(ar, sizeof(*a), 64);
	if (!a)
		return NULL;
	a->cfg = *cfg;
	a->max_vifs = max_vifs_of(cfg);
	log_set_level(cfg->cmdline.log_level);
	struct router_config rc;
	router_cfg_of(cfg, &rc);
	if (!router_init(&a->router, ar, &rc))
		return NULL;
	a->xs = arena_alloc(ar, sizeof(*a->xs), 64);
	a->qrexec = arena_alloc(ar, sizeof(*a->qrexec), 64);
	size_t qmem = qdb_mem_size(QDB_DEFAULT_MAX_KEYS, QDB_DEFAULT_VALUE_BYTES);
	void *qbuf = arena_alloc(ar, qmem, 64);
	a->vifs = arena_alloc(ar, sizeof(struct vif) * a->max_vifs, 64);
	uint32_t nsets = n_sets_of(cfg);
	a->set_pool = arena_alloc(ar, sizeof(struct rule_set) * nsets, 64);
	a->free_sets = arena_alloc(ar, sizeof(struct rule_set *) * nsets, 64);
	if (!a->xs || !a->qrexec || !qbuf || !a->vifs || !a->set_pool || !a->free_sets)
		return NULL;
	for (uint32_t i = 0; i < nsets; i++)
		a->free_sets[i] = &a->set_pool[i];
	a->n_free_sets = nsets;
	for (uint32_t i = 0; i < SCAN_IN_FLIGHT; i++)
		a->in_flight_jobs[i].kind = 0xff;
	if (qdb_init(&a->qdb, qbuf, qmem, QDB_DEFAULT_MAX_KEYS, QDB_DEFAULT_VALUE_BYTES, on_qdb_event,
		     a) != QDB_OK)
		return NULL;
	struct resolver_config rcfg;
	resolver_cfg_of(cfg, &rcfg);
	if (!resolver_init(&a->res, ar, &rcfg, send_dns, a))
		return NULL;
	resolver_set_report(a->res, on_dns_report, a);
	router_set_local_udp(a->router, rcfg.port_lo, rcfg.port_hi, on_local_udp, a);
	router_set_dns_observer(a->router, on_client_dns_answer, a);
	xs_client_init(a->xs, on_xs_closed, a);
	struct qrexec_connector conn = {.connect = connect_vchan, .ctx = a};
	struct qrexec_services svc = {.firewall_status = status_hook, .ctx = a};
	qrexec_init(a->qrexec, &conn, &svc);
	if (cmdline_manual_network(&cfg->cmdline))
		a->net_dirty = true;
	log_info("qubes-c-firewall starting: %u clients, %u connections", a->max_vifs,
		 cfg->cmdline.nat_table_size);
	return a;
}

static void control_plane(struct app *a)
{
	struct stream s;
	if (!xs_client_is_open(a->xs) && a->now >= a->next_xs_try) {
		a->next_xs_try = a->now + RETRY_NS;
		if (platform_xenstore_connect(&s)) {
			xs_client_attach(a->xs, s);
			log_info("xenstore: connected");
			if (!a->xs_watching &&
			    xs_watch_add(a->xs, 0, "backend/vif", on_vif_watch, a, &a->vif_watch) == XS_OK)
				a->xs_watching = true;
			a->scan_wanted = true;
		}
	}
	if (qdb_state(&a->qdb) == QDB_DISCONNECTED && a->now >= a->next_qdb_try) {
		a->next_qdb_try = a->now + RETRY_NS;
		if (platform_qubesdb_connect(&s))
			qdb_attach(&a->qdb, s);
	}
	if (qrexec_state(a->qrexec) == QREXEC_WAITING && platform_qrexec_accept(&s))
		qrexec_attach(a->qrexec, s);
}

bool app_step(struct app *a, uint64_t now)
{
	bool more = false;
	a->now = now;
	clock_set_now(now);
	control_plane(a);
	if (xs_client_is_open(a->xs)) {
		if (a->scan_wanted && !a->scan_running)
			scan_start(a);
		scan_pump(a);
		more |= xs_poll(a->xs);
		scan_pump(a);
	}
	more |= qdb_poll(&a->qdb);
	if (a->net_dirty)
		apply_net_config(a);
	try_uplink(a);
	more |= qrexec_poll(a->qrexec, now);
	resolver_tick(a->res, now);
	if (now >= a->next_tick) {
		a->next_tick = now + TICK_NS;
		router_tick(a->router, now);
	}
	app_flush_log();
	return more;
}

uint64_t app_next_deadline(const struct app *a, uint64_t now)
{
	uint64_t d = MIN(a->next_tick, resolver_next_wakeup(a->res));
	if (a->job_count || a->scan_wanted)
		d = MIN(d, now + 10 * NS_PER_MS);
	if (!xs_client_is_open(a->xs))
		d = MIN(d, a->next_xs_try);
	if (qdb_state(&a->qdb) == QDB_DISCONNECTED)
		d = MIN(d, a->next_qdb_try);
	if (a->has_net && !a->uplink_up)
		d = MIN(d, a->next_uplink_try);
	return d < now ? now : d;
}

void app_client_frame(struct app *a, uint32_t cookie, uint8_t *frame, size_t len, uint32_t flags,
		      uint64_t now)
{
	if (cookie >= a->max_vifs || a->vifs[cookie].state != VIF_ACTIVE)
		return;
	router_input_client(a->router, a->vifs[cookie].rid, frame, len, flags, now);
}

void app_client_closed(struct app *a, uint32_t cookie)
{
	if (cookie < a->max_vifs && a->vifs[cookie].state == VIF_ACTIVE)
		vif_release(a, &a->vifs[cookie]);
}

void app_uplink_frame(struct app *a, uint8_t *frame, size_t len, uint32_t flags, uint64_t now)
{
	if (a->uplink_up)
		router_input_uplink(a->router, frame, len, flags, now);
}

struct xs_client *app_xenstore(struct app *app)
{
	return app->xs;
}

void app_flush_log(void)
{
	char line[LOG_LINE_MAX + 64];
	size_t n;
	/* Bounded: the ring holds a fixed number of lines. */
	for (unsigned i = 0; i < 4096 && (n = log_drain_line(line, sizeof(line))) > 0; i++)
		platform_console_line(line, n);
}
