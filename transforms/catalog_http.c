/*
 * drover - transforms/catalog_http.c: one GET against Backstage's catalog
 * REST API (libcurl).  A fresh easy handle per request keeps threads
 * apart; NOSIGNAL because executor threads must not take SIGALRM.
 */
#include "plan_int.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HTTP_BODY_MAX (4 * 1024 * 1024)

static size_t on_body(char *data, size_t size, size_t nmemb, void *opaque) {
        drv_http_resp_t *resp = opaque;
        size_t n = size * nmemb;
        char *body;

        if (resp->len + n > HTTP_BODY_MAX)
                return 0; /* curl fails with CURLE_WRITE_ERROR */
        if (!(body = realloc(resp->body, resp->len + n + 1)))
                return 0;
        memcpy(body + resp->len, data, n);
        resp->len += n;
        body[resp->len] = '\0';
        resp->body = body;
        return n;
}

/* base + path with each ref part escaped; malloc'ed. */
static char *entity_url(CURL *curl, const char *base,
                        const drv_entity_ref_t *ref) {
        char *k = curl_easy_escape(curl, ref->kind, 0);
        char *ns = curl_easy_escape(curl, ref->namespace_, 0);
        char *n = curl_easy_escape(curl, ref->name, 0);
        size_t blen = strlen(base), len;
        char *url = NULL;

        while (blen > 0 && base[blen - 1] == '/')
                blen--;
        if (k && ns && n) {
                len = blen + strlen(k) + strlen(ns) + strlen(n) + 64;
                if ((url = malloc(len)))
                        snprintf(url, len,
                                 "%.*s/api/catalog/entities/by-name/%s/%s/%s",
                                 (int)blen, base, k, ns, n);
        }
        curl_free(k);
        curl_free(ns);
        curl_free(n);
        return url;
}

drv_err_t drv_backstage_get(const char *base_url, const char *token,
                            long connect_timeout_ms, long timeout_ms,
                            const drv_entity_ref_t *ref, drv_http_resp_t *resp,
                            char *errstr, size_t errstr_size) {
        struct curl_slist *hdrs = NULL;
        char auth[1100], safe[512];
        CURL *curl = curl_easy_init();
        CURLcode rc;
        char *url;

        memset(resp, 0, sizeof(*resp));
        drv_redact_url(base_url, safe, sizeof(safe));
        if (!curl || !(url = entity_url(curl, base_url, ref))) {
                curl_easy_cleanup(curl);
                return drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                   "out of memory");
        }
        hdrs = curl_slist_append(hdrs, "Accept: application/json");
        if (token && *token) {
                snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
                hdrs = curl_slist_append(hdrs, auth);
        }
        curl_easy_setopt(curl, CURLOPT_URL, url);
        curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, connect_timeout_ms);
        curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, resp);
        curl_easy_setopt(curl, CURLOPT_USERAGENT, "drover/" DROVER_VERSION);
        rc = curl_easy_perform(curl);
        if (rc == CURLE_OK)
                curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp->status);
        curl_slist_free_all(hdrs);
        memset(auth, 0, sizeof(auth));
        curl_easy_cleanup(curl);
        free(url);
        if (rc != CURLE_OK) {
                free(resp->body);
                memset(resp, 0, sizeof(*resp));
                return drv_err_set(errstr, errstr_size,
                                   DRV_ERR_CATALOG_UNAVAILABLE,
                                   "cannot reach backstage catalog at %s: %s",
                                   safe, curl_easy_strerror(rc));
        }
        return DRV_OK;
}
