/*
 * drover - schema/registry.c: a Confluent Schema Registry client.
 *
 * GET /schemas/ids/{id} and POST /subjects/{subject}/versions over
 * libcurl (TLS, timeouts, basic or bearer auth); bodies parsed with
 * jansson.  Errors are classified here once: anything that says the
 * registry could not answer (connection, timeout, 5xx, 429, 401/403 - a
 * credentials problem is the worker's, not the record's) is transient;
 * a registry that answers "no such schema" (404, other 4xx) makes the
 * record poison.  Messages carry the URL with any password redacted.
 */
#include "schema_int.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REG_BODY_MAX (1024 * 1024)
#define REG_CT       "application/vnd.schemaregistry.v1+json"

struct drv_registry_s {
        char *url; /* without trailing slash */
        char redacted[512];
        char *user, *password;
        char *auth_header; /* "Authorization: Bearer ..." or NULL */
        char *ca_file;
        long timeout_ms;
};

struct body {
        char *buf;
        size_t len;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
}

static char *dup_or_null(const char *s) {
        return s ? strdup(s) : NULL;
}

drv_registry_t *drv_registry_new(const drv_schema_conf_t *conf, char *errstr,
                                 size_t errstr_size) {
        drv_registry_t *reg = calloc(1, sizeof(*reg));
        size_t n;

        pthread_once(&curl_once, curl_init_once);
        if (!reg || !(reg->url = strdup(conf->registry_url))) {
                free(reg);
                drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                            "out of memory creating the registry client");
                return NULL;
        }
        n = strlen(reg->url);
        while (n > 0 && reg->url[n - 1] == '/')
                reg->url[--n] = '\0';
        drv_redact_url(reg->url, reg->redacted, sizeof(reg->redacted));
        reg->user = dup_or_null(conf->registry_user);
        reg->password = dup_or_null(conf->registry_password);
        reg->ca_file = dup_or_null(conf->registry_ca_file);
        if (conf->registry_token) {
                n = strlen(conf->registry_token) + 32;
                if ((reg->auth_header = malloc(n)))
                        snprintf(reg->auth_header, n,
                                 "Authorization: Bearer %s",
                                 conf->registry_token);
        }
        reg->timeout_ms =
            conf->registry_timeout_ms > 0 ? conf->registry_timeout_ms : 5000;
        return reg;
}

void drv_registry_destroy(drv_registry_t *reg) {
        if (!reg)
                return;
        free(reg->url);
        free(reg->user);
        if (reg->password)
                memset(reg->password, 0, strlen(reg->password));
        free(reg->password);
        if (reg->auth_header)
                memset(reg->auth_header, 0, strlen(reg->auth_header));
        free(reg->auth_header);
        free(reg->ca_file);
        free(reg);
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *opaque) {
        struct body *b = opaque;
        size_t n = size * nmemb;
        char *nb;

        if (b->len + n > REG_BODY_MAX)
                return 0; /* curl fails the transfer: CURLE_WRITE_ERROR */
        nb = realloc(b->buf, b->len + n + 1);
        if (!nb)
                return 0;
        memcpy(nb + b->len, ptr, n);
        b->len += n;
        nb[b->len] = '\0';
        b->buf = nb;
        return n;
}

/* One request: body (may be NULL for GET) to reg->url + path.  On DRV_OK
 * *statusp is the HTTP status and out->buf the response (caller frees). */
static drv_err_t reg_request(drv_registry_t *reg, const char *path,
                             const char *post, long *statusp, struct body *out,
                             char *errstr, size_t errstr_size) {
        struct curl_slist *hdrs = NULL;
        char url[2048];
        CURLcode rc;
        CURL *c;

        snprintf(url, sizeof(url), "%s%s", reg->url, path);
        if (!(c = curl_easy_init()))
                return drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                   "cannot create an http handle");
        hdrs = curl_slist_append(hdrs, "Accept: " REG_CT ", application/json");
        if (post)
                hdrs = curl_slist_append(hdrs, "Content-Type: " REG_CT);
        if (reg->auth_header)
                hdrs = curl_slist_append(hdrs, reg->auth_header);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, reg->timeout_ms);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, reg->timeout_ms);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
        if (reg->ca_file)
                curl_easy_setopt(c, CURLOPT_CAINFO, reg->ca_file);
        if (reg->user) {
                curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
                curl_easy_setopt(c, CURLOPT_USERNAME, reg->user);
                curl_easy_setopt(c, CURLOPT_PASSWORD,
                                 reg->password ? reg->password : "");
        }
        if (post)
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, post);
        rc = curl_easy_perform(c);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, statusp);
        curl_easy_cleanup(c);
        curl_slist_free_all(hdrs);
        if (rc != CURLE_OK)
                return drv_err_set(errstr, errstr_size,
                                   DRV_ERR_REGISTRY_UNAVAILABLE,
                                   "cannot reach schema registry at %s: %s",
                                   reg->redacted, curl_easy_strerror(rc));
        return DRV_OK;
}

/* The route of an HTTP status that is not 200. */
static drv_err_t status_error(drv_registry_t *reg, long status,
                              const char *what, char *errstr,
                              size_t errstr_size) {
        drv_err_t err = DRV_ERR_UNKNOWN_SCHEMA;

        if (status >= 500 || status == 429 || status == 401 || status == 403 ||
            status == 408 || status == 0)
                err = DRV_ERR_REGISTRY_UNAVAILABLE;
        return drv_err_set(errstr, errstr_size, err,
                           "schema registry at %s answered %ld for %s",
                           reg->redacted, status, what);
}

drv_err_t drv_registry_get(drv_registry_t *reg, int32_t id, char **jsonp,
                           char *errstr, size_t errstr_size) {
        struct body b = {0};
        char path[64], what[64];
        const char *s, *type;
        json_t *root;
        drv_err_t err;
        long status = 0;

        *jsonp = NULL;
        snprintf(path, sizeof(path), "/schemas/ids/%d", (int)id);
        snprintf(what, sizeof(what), "schema id %d", (int)id);
        err = reg_request(reg, path, NULL, &status, &b, errstr, errstr_size);
        if (!err && status != 200)
                err = status_error(reg, status, what, errstr, errstr_size);
        if (err) {
                free(b.buf);
                return err;
        }
        root = json_loadb(b.buf ? b.buf : "", b.len, 0, NULL);
        free(b.buf);
        s = json_string_value(json_object_get(root, "schema"));
        type = json_string_value(json_object_get(root, "schemaType"));
        if (!s || (type && strcmp(type, "AVRO")))
                err = drv_err_set(errstr, errstr_size, DRV_ERR_UNKNOWN_SCHEMA,
                                  "schema registry at %s has no avro schema "
                                  "for id %d",
                                  reg->redacted, (int)id);
        else if (!(*jsonp = strdup(s)))
                err = drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                  "out of memory reading a schema");
        json_decref(root);
        return err;
}

drv_err_t drv_registry_register(drv_registry_t *reg, const char *subject,
                                const char *json, int32_t *idp, char *errstr,
                                size_t errstr_size) {
        struct body b = {0};
        char path[512], what[300];
        json_t *req, *root;
        char *post, *esc;
        drv_err_t err;
        long status = 0;

        if (!(esc = curl_easy_escape(NULL, subject, 0)))
                return drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                   "out of memory");
        snprintf(path, sizeof(path), "/subjects/%s/versions", esc);
        snprintf(what, sizeof(what), "registering subject \"%s\"", subject);
        curl_free(esc);
        req = json_pack("{ss}", "schema", json);
        post = req ? json_dumps(req, JSON_COMPACT) : NULL;
        json_decref(req);
        if (!post)
                return drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                   "out of memory");
        err = reg_request(reg, path, post, &status, &b, errstr, errstr_size);
        free(post);
        if (!err && status != 200)
                err = status_error(reg, status, what, errstr, errstr_size);
        root = err ? NULL : json_loadb(b.buf ? b.buf : "", b.len, 0, NULL);
        free(b.buf);
        if (!err && !json_is_integer(json_object_get(root, "id")))
                err = drv_err_set(errstr, errstr_size, DRV_ERR_UNKNOWN_SCHEMA,
                                  "schema registry at %s gave no id when %s",
                                  reg->redacted, what);
        if (!err)
                *idp = (int32_t)json_integer_value(json_object_get(root, "id"));
        json_decref(root);
        return err;
}
