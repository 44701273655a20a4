/* support_http.h — shared by unit tests: one HTTP request to a loopback simulator via libcurl. */
#ifndef KASA_TESTS_SUPPORT_HTTP_H
#define KASA_TESTS_SUPPORT_HTTP_H

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "schema/json.h"

static inline size_t support_http_collect(char *p, size_t size, size_t n, void *arg)
{
    jbuf_add(arg, p, size * n);
    return size * n;
}

/* Sends METHOD (GET, or POST with BODY) to BASE followed by PATH, trusting CA_FILE when it is not
 * NULL, with a 5 s timeout; returns the reply body (caller frees) or NULL on a transport error. */
static inline char *support_http_request(const char *base, const char *ca_file, const char *method,
                                         const char *path, const char *body)
{
    char url[160];
    jbuf_t out;
    jbuf_init(&out);
    snprintf(url, sizeof url, "%s%s", base, path);
    CURL *h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, url);
    if (ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, ca_file);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, support_http_collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &out);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
    if (strcmp(method, "POST") == 0)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
    CURLcode rc = curl_easy_perform(h);
    curl_easy_cleanup(h);
    if (rc != CURLE_OK) {
        jbuf_free(&out);
        return NULL;
    }
    return jbuf_take(&out);
}

#endif
