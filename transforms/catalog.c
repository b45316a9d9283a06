/*
 * drover - transforms/catalog.c: resolving entity refs to plans, with a
 * cache, from the local directory or from Backstage.
 *
 * One mutex guards the index / cache; it is never held across a network
 * request, so one slow catalog call does not stall the other executor
 * threads' cache hits.  Plans handed out are new references.
 *
 * Backstage has no conditional GET for entities (the etag is only in the
 * body), so "revalidate by etag" means: after the TTL, fetch again, and
 * keep the cached plan when metadata.etag is unchanged (no re-parse, same
 * pointer); build a new one when it changed.
 */
#include "plan_int.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct drv_catalog_s {
        char *dir, *url, *token;
        long connect_timeout_ms, timeout_ms, ttl_ms;
        pthread_mutex_t lock;
        pthread_cond_t checked; /* local: a directory check ended */
        drv_cindex_t idx;       /* local: the scan; backstage: the cache */
        int64_t scanned_ms;     /* local: monotonic time of the last check */
        int checking;           /* local: a thread is checking the dir */
        drv_catalog_stats_t stats;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void warn_bad_files(const drv_catalog_t *cat, size_t before);

static char *dup_or_null(const char *s) {
        return s ? strdup(s) : NULL;
}

drv_catalog_t *drv_catalog_new(const drv_catalog_conf_t *conf, char *errstr,
                               size_t errstr_size) {
        drv_catalog_t *cat;

        if (!conf || (!conf->dir && !conf->backstage_url)) {
                drv_err_set(errstr, errstr_size, DRV_ERR_CONFIG,
                            "no catalog: set a catalog directory "
                            "(DROVER_CATALOG_DIR) or BACKSTAGE_URL");
                return NULL;
        }
        if (!(cat = calloc(1, sizeof(*cat)))) {
                drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                            "out of memory");
                return NULL;
        }
        pthread_mutex_init(&cat->lock, NULL);
        pthread_cond_init(&cat->checked, NULL);
        cat->url = dup_or_null(conf->backstage_url);
        cat->dir = cat->url ? NULL : dup_or_null(conf->dir);
        cat->token = dup_or_null(conf->backstage_token);
        cat->connect_timeout_ms =
            conf->connect_timeout_ms > 0 ? conf->connect_timeout_ms : 2000;
        cat->timeout_ms = conf->timeout_ms > 0 ? conf->timeout_ms : 10000;
        cat->ttl_ms = conf->cache_ttl_ms > 0 ? conf->cache_ttl_ms : 30000;
        if (cat->url) {
                pthread_once(&curl_once, curl_init_once);
                return cat;
        }
        if (drv_catalog_scan(cat->dir, &cat->idx, errstr, errstr_size)) {
                drv_catalog_destroy(cat);
                return NULL;
        }
        cat->scanned_ms = drv_mono_ms();
        cat->stats.fetches++;
        warn_bad_files(cat, 0);
        return cat;
}

void drv_catalog_destroy(drv_catalog_t *cat) {
        if (!cat)
                return;
        drv_cindex_free(&cat->idx);
        pthread_mutex_destroy(&cat->lock);
        pthread_cond_destroy(&cat->checked);
        free(cat->dir);
        free(cat->url);
        if (cat->token)
                memset(cat->token, 0, strlen(cat->token));
        free(cat->token);
        free(cat);
}

void drv_catalog_stats(drv_catalog_t *cat, drv_catalog_stats_t *st) {
        pthread_mutex_lock(&cat->lock);
        *st = cat->stats;
        pthread_mutex_unlock(&cat->lock);
}

/* Say once, not at every rescan, that files in the catalog do not parse. */
static void warn_bad_files(const drv_catalog_t *cat, size_t before) {
        if (cat->idx.bad_files && cat->idx.bad_files != before)
                drv_log(DRV_LOG_WARN,
                        "catalog \"%s\": %zu file(s) failed to parse, "
                        "first: %s",
                        cat->dir, cat->idx.bad_files, cat->idx.first_bad);
}

/* Answer from an index entry (or its absence); called under the lock. */
static drv_err_t answer(drv_catalog_t *cat, const drv_centry_t *e,
                        const char *ref, drv_plan_t **planp, char *errstr,
                        size_t errstr_size) {
        if (e && e->plan) {
                *planp = drv_plan_retain(e->plan);
                return DRV_OK;
        }
        if (e)
                return drv_err_set(errstr, errstr_size, e->err, "%s",
                                   e->errmsg ? e->errmsg : "invalid plan");
        if (cat->idx.bad_files)
                return drv_err_set(errstr, errstr_size, DRV_ERR_UNKNOWN_PLAN,
                                   "no migration plan %s in catalog \"%s\" "
                                   "(%zu file(s) failed to parse, first: "
                                   "%.200s)",
                                   ref, cat->dir, cat->idx.bad_files,
                                   cat->idx.first_bad);
        return drv_err_set(errstr, errstr_size, DRV_ERR_UNKNOWN_PLAN,
                           "no migration plan %s in catalog \"%s\"", ref,
                           cat->dir);
}

/* Check the directory (called and returning with the lock held; works
 * without it): a stat walk, and a full re-parse only when its signature
 * changed, so a large catalog costs a parse only when it is edited.  The
 * old index is freed outside the lock. */
static drv_err_t check_local(drv_catalog_t *cat, char *errstr,
                             size_t errstr_size) {
        drv_cindex_t fresh = {0}, old = {0};
        uint64_t sig = 0;
        drv_err_t err;
        int changed;

        cat->checking = 1;
        cat->stats.fetches++;
        pthread_mutex_unlock(&cat->lock);
        /* only the checking thread writes idx, so idx.sig reads safely */
        err = drv_catalog_sig(cat->dir, &sig, errstr, errstr_size);
        changed = !err && sig != cat->idx.sig;
        if (changed)
                err = drv_catalog_scan(cat->dir, &fresh, errstr, errstr_size);
        pthread_mutex_lock(&cat->lock);
        if (!err && changed) {
                old = cat->idx;
                cat->idx = fresh;
                warn_bad_files(cat, old.bad_files);
        } else if (!err) {
                cat->stats.revalidated++;
        }
        if (!err)
                cat->scanned_ms = drv_mono_ms();
        cat->checking = 0;
        pthread_cond_broadcast(&cat->checked);
        if (old.cnt || old.v || old.first_bad) {
                pthread_mutex_unlock(&cat->lock);
                drv_cindex_free(&old);
                pthread_mutex_lock(&cat->lock);
        }
        return err;
}

/* Local: check the directory after the TTL, or on a miss at most once a
 * second.  One thread checks at a time; meanwhile hits answer from the
 * current index and misses wait for the check's result. */
static drv_err_t resolve_local(drv_catalog_t *cat, const char *ref,
                               drv_plan_t **planp, char *errstr,
                               size_t errstr_size) {
        drv_centry_t *e;
        drv_err_t err;
        int64_t age;

        pthread_mutex_lock(&cat->lock);
        for (;;) {
                e = drv_cindex_find(&cat->idx, ref);
                age = drv_mono_ms() - cat->scanned_ms;
                if (age < cat->ttl_ms && (e || age < 1000)) {
                        if (e)
                                cat->stats.hits++;
                        break;
                }
                if (!cat->checking) {
                        if (check_local(cat, errstr, errstr_size)) {
                                pthread_mutex_unlock(&cat->lock);
                                return DRV_ERR_CATALOG_UNAVAILABLE;
                        }
                        e = drv_cindex_find(&cat->idx, ref);
                        break;
                }
                if (e) { /* another thread checks: answer from what we have */
                        cat->stats.hits++;
                        break;
                }
                pthread_cond_wait(&cat->checked, &cat->lock);
        }
        err = answer(cat, e, ref, planp, errstr, errstr_size);
        pthread_mutex_unlock(&cat->lock);
        return err;
}

/* Map a non-200 answer to an error. */
static drv_err_t http_error(const drv_catalog_t *cat, long status,
                            const char *ref, char *errstr, size_t errstr_size) {
        char safe[512];

        drv_redact_url(cat->url, safe, sizeof(safe));
        if (status == 404)
                return drv_err_set(errstr, errstr_size, DRV_ERR_UNKNOWN_PLAN,
                                   "no entity %s in the backstage catalog at "
                                   "%s (http 404)",
                                   ref, safe);
        if (status == 401 || status == 403)
                return drv_err_set(errstr, errstr_size,
                                   DRV_ERR_CATALOG_UNAVAILABLE,
                                   "backstage catalog at %s refused the "
                                   "request: http %ld (check the token)",
                                   safe, status);
        return drv_err_set(errstr, errstr_size, DRV_ERR_CATALOG_UNAVAILABLE,
                           "backstage catalog at %s answered http %ld", safe,
                           status);
}

/* Store (plan != NULL) or forget (plan == NULL) ref in the cache. */
static void cache_put(drv_catalog_t *cat, const char *ref, drv_plan_t *plan) {
        drv_centry_t *e;

        pthread_mutex_lock(&cat->lock);
        e = drv_cindex_find(&cat->idx, ref);
        if (!plan) {
                if (e)
                        drv_cindex_remove(&cat->idx, e);
        } else if (e || (e = drv_cindex_add(&cat->idx, ref))) {
                if (e->plan != plan) {
                        drv_plan_release(e->plan);
                        e->plan = drv_plan_retain(plan);
                }
                e->checked_ms = drv_mono_ms();
        }
        pthread_mutex_unlock(&cat->lock);
}

/* Turn a 200 body into a plan; `cached` (may be NULL) is kept when its
 * etag matches.  Returns a new reference in *planp. */
static drv_err_t from_body(drv_catalog_t *cat, const char *ref,
                           const drv_http_resp_t *resp, drv_plan_t *cached,
                           drv_plan_t **planp, char *errstr,
                           size_t errstr_size) {
        json_t *entity =
            json_loadb(resp->body ? resp->body : "", resp->len, 0, NULL);
        const char *etag = json_string_value(
            json_object_get(json_object_get(entity, "metadata"), "etag"));
        char source[480];
        drv_err_t err;

        if (!json_is_object(entity)) {
                json_decref(entity);
                return drv_err_set(errstr, errstr_size,
                                   DRV_ERR_CATALOG_UNAVAILABLE,
                                   "backstage answered %s with a body that "
                                   "is not a json object",
                                   ref);
        }
        if (cached && cached->etag && etag && !strcmp(cached->etag, etag)) {
                json_decref(entity);
                pthread_mutex_lock(&cat->lock);
                cat->stats.revalidated++;
                pthread_mutex_unlock(&cat->lock);
                *planp = drv_plan_retain(cached);
                return DRV_OK;
        }
        snprintf(source, sizeof(source), "backstage entity %s", ref);
        err = drv_plan_from_json(entity, source, planp, errstr, errstr_size);
        json_decref(entity);
        return err;
}

static drv_err_t resolve_backstage(drv_catalog_t *cat,
                                   const drv_entity_ref_t *er, const char *ref,
                                   drv_plan_t **planp, char *errstr,
                                   size_t errstr_size) {
        drv_plan_t *cached = NULL;
        drv_http_resp_t resp;
        drv_centry_t *e;
        drv_err_t err;

        pthread_mutex_lock(&cat->lock);
        if ((e = drv_cindex_find(&cat->idx, ref)) && e->plan) {
                cached = drv_plan_retain(e->plan);
                if (drv_mono_ms() - e->checked_ms < cat->ttl_ms) {
                        cat->stats.hits++;
                        pthread_mutex_unlock(&cat->lock);
                        *planp = cached;
                        return DRV_OK;
                }
        }
        cat->stats.fetches++;
        pthread_mutex_unlock(&cat->lock);

        err =
            drv_backstage_get(cat->url, cat->token, cat->connect_timeout_ms,
                              cat->timeout_ms, er, &resp, errstr, errstr_size);
        if (!err && resp.status != 200)
                err = http_error(cat, resp.status, ref, errstr, errstr_size);
        else if (!err)
                err = from_body(cat, ref, &resp, cached, planp, errstr,
                                errstr_size);
        free(resp.body);
        if (err && DRV_ERR_FAMILY(err) == DRV_ERR_FAMILY_TRANSIENT && cached) {
                drv_log(DRV_LOG_WARN, "catalog: serving cached %s: %s", ref,
                        errstr);
                pthread_mutex_lock(&cat->lock);
                cat->stats.stale++;
                pthread_mutex_unlock(&cat->lock);
                *planp = cached;
                return DRV_OK;
        }
        if (!err || DRV_ERR_FAMILY(err) == DRV_ERR_FAMILY_PERMANENT)
                cache_put(cat, ref, err ? NULL : *planp);
        drv_plan_release(cached);
        return err;
}

drv_err_t drv_catalog_resolve(drv_catalog_t *cat, const char *ref,
                              drv_plan_t **planp, char *errstr,
                              size_t errstr_size) {
        drv_entity_ref_t er;
        char canon[400];
        drv_err_t err;

        *planp = NULL;
        if ((err = drv_entity_ref_parse(ref, &er, errstr, errstr_size)))
                return err;
        drv_entity_ref_format(&er, canon, sizeof(canon));
        if (cat->url)
                return resolve_backstage(cat, &er, canon, planp, errstr,
                                         errstr_size);
        return resolve_local(cat, canon, planp, errstr, errstr_size);
}
