/*
 * drover - consumer/worker/partition.c: the partition state machine (see
 * partition.h for the states, the window and the metadata format).
 */
#include "partition.h"

#include "schema.h" /* drv_log */

#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

static const char *const pstate_names[] = {
    [DRV_PS_UNASSIGNED] = "unassigned",
    [DRV_PS_STARTING] = "starting",
    [DRV_PS_ACTIVE] = "active",
};

static const char *const estate_names[] = {
    [DRV_ES_WAITING] = "waiting",     [DRV_ES_RUNNING] = "running",
    [DRV_ES_RETRY] = "retry",         [DRV_ES_FINAL] = "final",
    [DRV_ES_COMMITTED] = "committed",
};

const char *drv_pt_state_name(drv_pstate_t s) {
        return (unsigned)s < sizeof(pstate_names) / sizeof(pstate_names[0])
                   ? pstate_names[s]
                   : "?";
}

const char *drv_pt_estate_name(drv_estate_t s) {
        return (unsigned)s < sizeof(estate_names) / sizeof(estate_names[0])
                   ? estate_names[s]
                   : "?";
}

uint64_t drv_pt_key_hash(const void *key, size_t len) {
        const unsigned char *k = key;
        uint64_t h = 1469598103934665603ULL; /* FNV-1a */
        size_t i;

        if (!key) /* records without a key share one lane */
                return 0x6e756c6c6b6579ULL;
        for (i = 0; i < len; i++) {
                h ^= k[i];
                h *= 1099511628211ULL;
        }
        return h;
}

/*
 * ------------------------------------------------------------------------
 * The window
 * ------------------------------------------------------------------------
 */
static drv_ent_t *ent_at(const drv_part_t *p, size_t i) {
        return &p->win[p->head + i];
}

/* The record at `offset`, or NULL (binary search: offsets ascend). */
static drv_ent_t *ent_find(const drv_part_t *p, int64_t offset) {
        size_t lo = 0, hi = p->cnt;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int64_t o = ent_at(p, mid)->offset;
                if (o == offset)
                        return ent_at(p, mid);
                if (o < offset)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return NULL;
}

static int ent_holds_bytes(const drv_ent_t *e) {
        return e->state != DRV_ES_COMMITTED;
}

static void ent_set(drv_part_t *p, drv_ent_t *e, drv_estate_t to) {
        drv_log(DRV_LOG_DEBUG, "partition %d offset %" PRId64 ": %s -> %s",
                (int)p->pn, e->offset, drv_pt_estate_name(e->state),
                drv_pt_estate_name(to));
        if (ent_holds_bytes(e) && to == DRV_ES_COMMITTED)
                p->bytes -= e->bytes;
        e->state = to;
}

static void win_clear(drv_part_t *p) {
        size_t i;

        for (i = 0; i < p->cnt; i++) {
                drv_ent_t *e = ent_at(p, i);
                if (e->job && p->job_free)
                        p->job_free(e->job);
                e->job = NULL;
        }
        p->head = p->cnt = 0;
        p->bytes = 0;
        p->prio_cnt = 0;
        free(p->inherit);
        p->inherit = NULL;
        p->inherit_cnt = 0;
}

/* Drop records below `offset` (they are committed). */
static void win_trim(drv_part_t *p, int64_t offset) {
        while (p->cnt > 0 && ent_at(p, 0)->offset < offset) {
                drv_ent_t *e = ent_at(p, 0);
                if (ent_holds_bytes(e))
                        p->bytes -= e->bytes;
                p->prio_cnt -= e->priority != 0;
                if (e->job && p->job_free)
                        p->job_free(e->job);
                p->head++;
                p->cnt--;
        }
        if (p->cnt == 0)
                p->head = 0;
}

static int win_append(drv_part_t *p, const drv_ent_t *e) {
        if (p->head + p->cnt == p->cap) {
                if (p->head > 0) {
                        memmove(p->win, p->win + p->head,
                                p->cnt * sizeof(*p->win));
                        p->head = 0;
                } else {
                        size_t cap = p->cap ? p->cap * 2 : 64;
                        drv_ent_t *nw = realloc(p->win, cap * sizeof(*nw));
                        if (!nw)
                                return -1;
                        p->win = nw;
                        p->cap = cap;
                }
        }
        p->win[p->head + p->cnt++] = *e;
        if (ent_holds_bytes(e))
                p->bytes += e->bytes;
        p->prio_cnt += e->priority != 0;
        return 0;
}

/* Drop inherited ranges wholly below `offset`, clip the first. */
static void inherit_clip(drv_part_t *p, int64_t offset) {
        size_t k = 0;

        while (k < p->inherit_cnt && p->inherit[k].hi < offset)
                k++;
        if (k > 0) {
                memmove(p->inherit, p->inherit + k,
                        (p->inherit_cnt - k) * sizeof(*p->inherit));
                p->inherit_cnt -= k;
        }
        if (p->inherit_cnt > 0 && p->inherit[0].lo < offset)
                p->inherit[0].lo = offset;
}

static int in_ranges(const drv_pt_range_t *r, size_t cnt, int64_t offset) {
        size_t i;

        for (i = 0; i < cnt; i++)
                if (offset >= r[i].lo && offset <= r[i].hi)
                        return 1;
        return 0;
}

/*
 * ------------------------------------------------------------------------
 * Transitions
 * ------------------------------------------------------------------------
 */
static void set_state(drv_part_t *p, drv_pstate_t to) {
        drv_log(DRV_LOG_DEBUG, "partition %d: %s -> %s", (int)p->pn,
                drv_pt_state_name(p->state), drv_pt_state_name(to));
        p->state = to;
}

static int refuse(const drv_part_t *p, const char *event) {
        drv_log(DRV_LOG_DEBUG, "partition %d: %s refused in state %s",
                (int)p->pn, event, drv_pt_state_name(p->state));
        return -1;
}

void drv_pt_init(drv_part_t *p, int32_t pn, void (*job_free)(void *job)) {
        memset(p, 0, sizeof(*p));
        p->pn = pn;
        p->next_offset = p->committed = p->assign_pos = -1;
        p->stats_committed = -1;
        p->job_free = job_free;
}

void drv_pt_fini(drv_part_t *p) {
        win_clear(p);
        free(p->win);
        p->win = NULL;
        p->cap = 0;
        p->state = DRV_PS_UNASSIGNED;
}

/* Forget the window and every outcome in flight. */
static void reset(drv_part_t *p) {
        win_clear(p);
        p->epoch++;
        p->dirty = 0;
        p->next_offset = -1;
        p->start_due = 0;
        p->start_logged = 0;
        p->start_fails = 0;
}

int drv_pt_assign(drv_part_t *p, int64_t assign_pos) {
        if (p->state != DRV_PS_UNASSIGNED)
                return refuse(p, "assign");
        reset(p);
        p->paused = 0;
        p->committed = -1;
        p->assign_pos = assign_pos;
        p->restart_due = 0;
        p->restart_logged = 0;
        p->lag_query_ms = 0;
        p->stats_committed = -1;
        set_state(p, DRV_PS_STARTING);
        return 0;
}

int drv_pt_revoke(drv_part_t *p) {
        if (p->state == DRV_PS_UNASSIGNED)
                return refuse(p, "revoke");
        reset(p);
        p->paused = 0;
        p->restart_due = 0;
        set_state(p, DRV_PS_UNASSIGNED);
        return 0;
}

int drv_pt_rewind(drv_part_t *p, int64_t seek) {
        if (p->state == DRV_PS_UNASSIGNED)
                return refuse(p, "rewind");
        reset(p);
        p->next_offset = seek;
        set_state(p, DRV_PS_STARTING);
        return 0;
}

int drv_pt_start(drv_part_t *p, int64_t committed, const drv_pt_range_t *r,
                 size_t rcnt) {
        size_t i;

        if (p->state != DRV_PS_STARTING)
                return refuse(p, "start");
        p->committed = committed >= 0 ? committed : -1;
        if (committed >= 0)
                win_trim(p, committed);
        for (i = 0; i < p->cnt; i++) {
                drv_ent_t *e = ent_at(p, i);
                if (e->state == DRV_ES_WAITING &&
                    in_ranges(r, rcnt, e->offset)) {
                        ent_set(p, e, DRV_ES_COMMITTED);
                        if (p->job_free)
                                p->job_free(e->job);
                        e->job = NULL;
                }
        }
        free(p->inherit);
        p->inherit = NULL;
        p->inherit_cnt = 0;
        if (rcnt > 0 && (p->inherit = malloc(rcnt * sizeof(*r)))) {
                memcpy(p->inherit, r, rcnt * sizeof(*r));
                p->inherit_cnt = rcnt;
                if (p->next_offset >= 0)
                        inherit_clip(p, p->next_offset);
        }
        set_state(p, DRV_PS_ACTIVE);
        return 0;
}

int drv_pt_fetched(drv_part_t *p, int64_t offset, uint64_t key, size_t bytes,
                   int32_t priority, uint64_t seq, void *job) {
        drv_ent_t e = {0};

        if (p->state == DRV_PS_UNASSIGNED)
                return -1;
        if ((p->next_offset >= 0 && offset < p->next_offset) ||
            (p->committed >= 0 && offset < p->committed &&
             p->state == DRV_PS_ACTIVE)) {
                if (p->job_free)
                        p->job_free(job);
                return 1;
        }
        p->next_offset = offset + 1;
        e.offset = offset;
        e.key = key;
        e.bytes = bytes;
        e.priority = priority;
        e.seq = seq;
        e.state = DRV_ES_WAITING;
        e.job = job;
        if (p->state == DRV_PS_ACTIVE &&
            in_ranges(p->inherit, p->inherit_cnt, offset)) {
                /* final under an earlier owner: no second run, no second
                 * status event; kept in the window for the metadata */
                drv_log(DRV_LOG_DEBUG,
                        "partition %d offset %" PRId64
                        ": final per the commit metadata",
                        (int)p->pn, offset);
                e.state = DRV_ES_COMMITTED;
                e.job = NULL;
                if (p->job_free)
                        p->job_free(job);
        }
        if (p->state == DRV_PS_ACTIVE)
                inherit_clip(p, offset + 1);
        drv_log(DRV_LOG_DEBUG, "partition %d offset %" PRId64 ": fetched, %s",
                (int)p->pn, offset, drv_pt_estate_name(e.state));
        if (win_append(p, &e)) {
                /* a record missing from the window would read as one
                 * that delivered nothing: never go on without it */
                if (e.job && p->job_free)
                        p->job_free(e.job);
                return -2;
        }
        return e.state == DRV_ES_COMMITTED ? 1 : 0;
}

void *drv_pt_dispatch(drv_part_t *p, int64_t offset) {
        drv_ent_t *e = ent_find(p, offset);
        void *job;

        if (!e || p->state != DRV_PS_ACTIVE ||
            (e->state != DRV_ES_WAITING && e->state != DRV_ES_RETRY)) {
                refuse(p, "dispatch");
                return NULL;
        }
        job = e->job;
        e->job = NULL;
        ent_set(p, e, DRV_ES_RUNNING);
        return job;
}

int drv_pt_undispatch(drv_part_t *p, int64_t offset, void *job) {
        drv_ent_t *e = ent_find(p, offset);

        if (!e || e->state != DRV_ES_RUNNING)
                return refuse(p, "undispatch");
        e->job = job;
        ent_set(p, e, DRV_ES_WAITING);
        return 0;
}

int drv_pt_final(drv_part_t *p, int64_t offset) {
        drv_ent_t *e = ent_find(p, offset);

        if (!e || e->state != DRV_ES_RUNNING)
                return refuse(p, "final");
        ent_set(p, e, DRV_ES_FINAL);
        p->dirty = 1;
        return 0;
}

int drv_pt_retry(drv_part_t *p, int64_t offset, int64_t due, void *job) {
        drv_ent_t *e = ent_find(p, offset);

        if (!e || e->state != DRV_ES_RUNNING)
                return refuse(p, "retry");
        e->job = job;
        e->retry_due = due;
        ent_set(p, e, DRV_ES_RETRY);
        return 0;
}

void drv_pt_db_back(drv_part_t *p, int64_t now) {
        size_t i;

        for (i = 0; i < p->cnt; i++) {
                drv_ent_t *e = ent_at(p, i);
                if (e->state == DRV_ES_RETRY && e->retry_due == 0)
                        e->retry_due = now;
        }
}

void drv_pt_committed(drv_part_t *p, int64_t offset) {
        size_t i;

        if (p->state != DRV_PS_ACTIVE)
                return;
        for (i = 0; i < p->cnt; i++) {
                drv_ent_t *e = ent_at(p, i);
                if (e->state == DRV_ES_FINAL)
                        ent_set(p, e, DRV_ES_COMMITTED);
        }
        win_trim(p, offset);
        inherit_clip(p, offset);
        if (offset > p->committed)
                p->committed = offset;
        p->dirty = 0;
}

void drv_pt_set_paused(drv_part_t *p, int paused) {
        p->paused = paused;
}

void drv_pt_seek(drv_part_t *p, int64_t offset) {
        p->next_offset = offset;
}

/*
 * ------------------------------------------------------------------------
 * Queries
 * ------------------------------------------------------------------------
 */
static int ent_final(const drv_ent_t *e) {
        return e->state == DRV_ES_FINAL || e->state == DRV_ES_COMMITTED;
}

int drv_pt_waiting(const drv_part_t *p, int64_t offset) {
        const drv_ent_t *e = ent_find(p, offset);

        return p->state != DRV_PS_UNASSIGNED && e && e->state == DRV_ES_WAITING;
}

int drv_pt_busy(const drv_part_t *p) {
        size_t i;

        for (i = 0; i < p->cnt; i++)
                if (!ent_final(ent_at(p, i)))
                        return 1;
        return 0;
}

int drv_pt_fetch_wanted(const drv_part_t *p, const drv_pt_limits_t *lim) {
        if (p->paused)
                return p->cnt <= lim->records / 2 && p->bytes <= lim->bytes / 2;
        return p->cnt < lim->records && p->bytes < lim->bytes;
}

/* The final offsets above `low` as ranges: runs of consecutive final
 * records (offsets between two of them delivered no record: folded in),
 * then the inherited ranges not fetched yet.  Returns the count; *rp is
 * `buf` (of `bufcnt`) when they fit, else malloc'ed (the caller frees
 * what is not buf); NULL and 0 when out of memory. */
static size_t final_ranges(const drv_part_t *p, int64_t low,
                           drv_pt_range_t *buf, size_t bufcnt,
                           drv_pt_range_t **rp) {
        drv_pt_range_t *r = buf;
        size_t n = 0, i, max = p->cnt + p->inherit_cnt;
        int open = 0;

        *rp = NULL;
        if (max > bufcnt && !(r = malloc(max * sizeof(*r))))
                return 0;
        for (i = 0; i < p->cnt; i++) {
                const drv_ent_t *e = ent_at(p, i);
                if (e->offset <= low || !ent_final(e)) {
                        open = 0;
                        continue;
                }
                if (open) {
                        r[n - 1].hi = e->offset;
                } else {
                        r[n].lo = r[n].hi = e->offset;
                        n++;
                        open = 1;
                }
        }
        for (i = 0; i < p->inherit_cnt; i++) {
                drv_pt_range_t x = p->inherit[i];
                if (x.hi <= low)
                        continue;
                if (x.lo <= low)
                        x.lo = low + 1;
                r[n++] = x;
        }
        *rp = r;
        return n;
}

int drv_pt_commit_point(const drv_part_t *p, int64_t quiet_pos, int64_t *offp,
                        char *meta, size_t meta_size) {
        drv_pt_range_t buf[128], *r;
        int64_t low = p->committed;
        size_t i, n;

        *offp = -1;
        meta[0] = '\0';
        if (p->state != DRV_PS_ACTIVE)
                return 0;
        for (i = 0; i < p->cnt; i++)
                if (!ent_final(ent_at(p, i)))
                        break;
        if (i < p->cnt) {
                low = ent_at(p, i)->offset;
        } else {
                if (p->cnt > 0 && ent_at(p, p->cnt - 1)->offset + 1 > low)
                        low = ent_at(p, p->cnt - 1)->offset + 1;
                if (quiet_pos > low)
                        low = quiet_pos;
                /* never a committed offset that is itself final: past the
                 * inherited ranges it lands in */
                for (i = 0; i < p->inherit_cnt; i++)
                        if (low >= p->inherit[i].lo && low <= p->inherit[i].hi)
                                low = p->inherit[i].hi + 1;
        }
        if (low < 0)
                return 0;
        n = final_ranges(p, low, buf, sizeof(buf) / sizeof(buf[0]), &r);
        drv_pt_meta_encode(low, r, n, meta, meta_size);
        if (r != buf)
                free(r);
        *offp = low;
        return p->dirty || low > p->committed;
}

/* Encoded length of the current metadata (for the dispatch budget). */
static size_t meta_len(const drv_part_t *p) {
        char buf[DRV_PT_META_BUDGET + 1];
        int64_t off;

        drv_pt_commit_point(p, -1, &off, buf, sizeof(buf));
        return strlen(buf);
}

/* A small set of key hashes (open addressing; 0 is a valid hash, so
 * slots carry a used flag), on the stack up to KEYSET_STACK slots (a
 * window of 100 records needs 256). */
#define KEYSET_STACK 256
typedef struct keyset_s {
        uint64_t *keys;
        unsigned char *used;
        size_t mask;
} keyset_t;

/* 1 when the key was already there. */
static int keyset_add(keyset_t *s, uint64_t key) {
        size_t i = (size_t)(key ^ (key >> 29)) & s->mask;

        while (s->used[i]) {
                if (s->keys[i] == key)
                        return 1;
                i = (i + 1) & s->mask;
        }
        s->used[i] = 1;
        s->keys[i] = key;
        return 0;
}

size_t drv_pt_ready(const drv_part_t *p, int64_t now, drv_pt_cand_t *out,
                    size_t max) {
        uint64_t keys[KEYSET_STACK];
        unsigned char used[KEYSET_STACK];
        keyset_t ks = {keys, used, 0};
        size_t slots = 16, i, n = 0, flying = 0;
        long allowed;
        int first = 1;

        if (p->state != DRV_PS_ACTIVE || p->cnt == 0 || max == 0)
                return 0;
        while (slots < p->cnt * 2)
                slots *= 2;
        if (slots > KEYSET_STACK) {
                ks.keys = malloc(slots * sizeof(*ks.keys));
                ks.used = malloc(slots);
                if (!ks.keys || !ks.used) {
                        free(ks.keys);
                        free(ks.used);
                        return 0;
                }
        }
        memset(ks.used, 0, slots);
        ks.mask = slots - 1;
        for (i = 0; i < p->cnt; i++) {
                const drv_ent_t *e = ent_at(p, i);
                flying +=
                    e->state == DRV_ES_RUNNING || e->state == DRV_ES_RETRY;
        }
        /* each record in flight may add one run when it completes; runs
         * are at most one per record and inherited range, so with few of
         * those the budget cannot bind and is not computed */
        if ((p->cnt + p->inherit_cnt + 1) * DRV_PT_META_RUN + 32 <=
            DRV_PT_META_BUDGET)
                allowed = LONG_MAX;
        else
                allowed = ((long)DRV_PT_META_BUDGET - (long)meta_len(p)) /
                              DRV_PT_META_RUN -
                          (long)flying;
        for (i = 0; i < p->cnt && n < max; i++) {
                const drv_ent_t *e = ent_at(p, i);
                int lowest;
                if (ent_final(e))
                        continue;
                lowest = first;
                first = 0;
                /* an earlier task of its dataset is not final */
                if (keyset_add(&ks, e->key))
                        continue;
                if (e->state != DRV_ES_WAITING &&
                    !(e->state == DRV_ES_RETRY && e->retry_due &&
                      e->retry_due <= now))
                        continue;
                /* the lowest unfinished record always may: it moves the
                 * committed offset and shortens the metadata */
                if (!lowest && allowed-- <= 0)
                        continue;
                out[n].pn = p->pn;
                out[n].offset = e->offset;
                out[n].priority = e->priority;
                out[n].seq = e->seq;
                n++;
        }
        if (ks.keys != keys) {
                free(ks.keys);
                free(ks.used);
        }
        return n;
}

/*
 * ------------------------------------------------------------------------
 * The metadata
 * ------------------------------------------------------------------------
 */
#define META_PREFIX "v1:"

static size_t b36(uint64_t v, char *out) {
        char tmp[16];
        size_t n = 0, i;

        do {
                tmp[n++] = "0123456789abcdefghijklmnopqrstuvwxyz"[v % 36];
                v /= 36;
        } while (v);
        for (i = 0; i < n; i++)
                out[i] = tmp[n - 1 - i];
        return n;
}

size_t drv_pt_meta_encode(int64_t base, const drv_pt_range_t *r, size_t cnt,
                          char *out, size_t out_size) {
        char run[64];
        size_t len, i, rl;
        int64_t cursor = base + 1;

        if (out_size < 32 || base < 0) {
                if (out_size)
                        out[0] = '\0';
                return 0;
        }
        memcpy(out, META_PREFIX, 3);
        len = 3 + b36((uint64_t)base, out + 3);
        out[len++] = '/';
        for (i = 0; i < cnt; i++) {
                if (r[i].lo < cursor || r[i].hi < r[i].lo)
                        break; /* not ascending: stop (a prefix is right) */
                rl = 0;
                if (i > 0)
                        run[rl++] = ',';
                rl += b36((uint64_t)(r[i].lo - cursor), run + rl);
                run[rl++] = '+';
                rl += b36((uint64_t)(r[i].hi - r[i].lo + 1), run + rl);
                if (len + rl >= out_size || len + rl > DRV_PT_META_BUDGET) {
                        drv_log(DRV_LOG_WARN,
                                "offset commit metadata over %d bytes: %zu "
                                "completed range(s) left out (they run "
                                "again, as no-ops)",
                                DRV_PT_META_BUDGET, cnt - i);
                        break;
                }
                memcpy(out + len, run, rl);
                len += rl;
                cursor = r[i].hi + 1;
        }
        out[len] = '\0';
        return len;
}

/* Parse a base36 number from s[*i..len); 0 on success. */
static int parse_b36(const char *s, size_t len, size_t *i, uint64_t *v) {
        size_t start = *i;
        uint64_t x = 0;

        while (*i < len) {
                char c = s[*i];
                unsigned d;
                if (c >= '0' && c <= '9')
                        d = (unsigned)(c - '0');
                else if (c >= 'a' && c <= 'z')
                        d = (unsigned)(c - 'a') + 10;
                else
                        break;
                if (x > (UINT64_C(0x7fffffffffffffff) - d) / 36)
                        return -1;
                x = x * 36 + d;
                (*i)++;
        }
        if (*i == start || *i - start > 13)
                return -1;
        *v = x;
        return 0;
}

int drv_pt_meta_decode(const char *meta, size_t len, int64_t committed,
                       drv_pt_range_t **rp, size_t *cntp) {
        drv_pt_range_t *r = NULL, *nr;
        size_t i = 3, n = 0, cap = 0;
        uint64_t base, gap, rlen;
        int64_t cursor;

        *rp = NULL;
        *cntp = 0;
        if (!meta || len < 5 || memcmp(meta, META_PREFIX, 3) || committed < 0 ||
            parse_b36(meta, len, &i, &base) || (int64_t)base != committed ||
            i >= len || meta[i++] != '/')
                return 0;
        cursor = committed + 1;
        while (i < len) {
                if (n > 0 && meta[i++] != ',')
                        goto bad;
                if (parse_b36(meta, len, &i, &gap) || i >= len ||
                    meta[i++] != '+' || parse_b36(meta, len, &i, &rlen) ||
                    rlen == 0 || gap > (uint64_t)(INT64_MAX - cursor) ||
                    rlen > (uint64_t)(INT64_MAX - cursor - (int64_t)gap))
                        goto bad;
                if (n == cap) {
                        cap = cap ? cap * 2 : 8;
                        if (!(nr = realloc(r, cap * sizeof(*r))))
                                goto bad;
                        r = nr;
                }
                r[n].lo = cursor + (int64_t)gap;
                r[n].hi = r[n].lo + (int64_t)rlen - 1;
                cursor = r[n].hi + 1;
                n++;
        }
        *rp = r;
        *cntp = n;
        return (int)n;
bad:
        free(r);
        return 0;
}
