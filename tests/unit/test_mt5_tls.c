/* test_mt5_tls.c — the MT5 client over HTTPS (as the real access server only speaks HTTPS):
 * a self-signed server is trusted through MT5_CA_FILE and refused without it; over TLS a dropped
 * reply still gives exactly one deal, and a closed connection still gets a new session first. */
#include <curl/curl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "actors/mt5.h"
#include "schema/json.h"
#include "tests/check.h"
#include "tests/unit/support_http.h"
#include "tools/sim/sim_mt5.h"

static sim_mt5_t *s_sim;
static char s_url[64], s_cert[256], s_key[256];

/* Writes a self-signed P-256 certificate for 127.0.0.1 (usable as its own CA) and its key. */
static int s_make_cert(const char *cert_path, const char *key_path)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    if (!key || !x)
        return -1;
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), (long) getpid());
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *) "127.0.0.1", -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    const struct { int nid; const char *value; } exts[] = {
        { NID_subject_alt_name, "IP:127.0.0.1" },
        { NID_basic_constraints, "critical,CA:TRUE" },
        { NID_key_usage, "critical,digitalSignature,keyCertSign" },
    };
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
        X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, exts[i].nid, exts[i].value);
        if (!e)
            return -1;
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
    if (!X509_sign(x, key, EVP_sha256()))
        return -1;
    FILE *fc = fopen(cert_path, "w"), *fk = fopen(key_path, "w");
    int ok = fc && fk && PEM_write_X509(fc, x) && PEM_write_PrivateKey(fk, key, NULL, NULL, 0, NULL, NULL);
    if (fc)
        fclose(fc);
    if (fk)
        fclose(fk);
    X509_free(x);
    EVP_PKEY_free(key);
    return ok ? 0 : -1;
}

static char *s_ctl(const char *method, const char *path, const char *body)
{
    return support_http_request(s_url, s_cert, method, path, body);
}

static int s_deal_count(void)
{
    char *body = s_ctl("GET", "/sim/stats", NULL);
    bson_t doc;
    char err[64];
    int64_t v = -1;
    if (body && json_parse(body, strlen(body), &doc, err, sizeof err) == 0)
        json_get_i64(&doc, "deals", &v);
    bson_destroy(&doc);
    free(body);
    return (int) v;
}

static void test_self_signed_server_is_trusted_with_ca_file(void)
{
    mt5_client_t *c = mt5_client_new(s_url, 1000, "Mgr-pw", s_cert, 5000);
    char err[200] = "";
    uint64_t ticket = 0;
    mt5_user_t u;
    CHECK_EQ_INT(mt5_ping(c, err, sizeof err), MT5_OK);
    CHECK_EQ_INT(mt5_balance(c, 100001, 4250, 2, "kasa tls 1", &ticket, err, sizeof err), MT5_OK);
    CHECK(ticket > 0);
    CHECK_EQ_INT(mt5_user_get(c, 100001, &u, err, sizeof err), MT5_OK);
    CHECK_EQ_STR(u.balance, "142.50");
    CHECK_EQ_INT(mt5_auth_count(c), 1);
    mt5_client_destroy(&c);
}

static void test_self_signed_server_is_refused_without_ca_file(void)
{
    mt5_client_t *c = mt5_client_new(s_url, 1000, "Mgr-pw", NULL, 5000);
    char err[200] = "";
    CHECK_EQ_INT(mt5_ping(c, err, sizeof err), MT5_TRANSIENT);
    CHECK(strstr(err, "certificate") != NULL || strstr(err, "SSL") != NULL);
    CHECK_EQ_INT(mt5_auth_count(c), 0);
    mt5_client_destroy(&c);
}

static void test_dropped_reply_over_tls_gives_one_deal(void)
{
    mt5_client_t *c = mt5_client_new(s_url, 1000, "Mgr-pw", s_cert, 5000);
    char err[200] = "";
    uint64_t ticket = 0, found = 0;
    int64_t now = (int64_t) time(NULL);
    CHECK_EQ_INT(mt5_ping(c, err, sizeof err), MT5_OK);
    int before = s_deal_count();
    free(s_ctl("POST", "/sim/faults", "{\"drop_reply\":1}"));
    CHECK_EQ_INT(mt5_balance(c, 100001, 100, 2, "kasa tls drop", &ticket, err, sizeof err), MT5_AMBIGUOUS);
    free(s_ctl("POST", "/sim/faults", "{\"drop_reply\":0}"));
    CHECK_EQ_INT(s_deal_count(), before + 1);
    CHECK_EQ_INT(mt5_find_balance_deal(c, 100001, "kasa tls drop", now - 60, now + 60, &found, err, sizeof err), MT5_OK);
    CHECK(found > 0);
    mt5_client_destroy(&c);
}

static void test_closed_tls_connection_gets_new_session_before_balance(void)
{
    mt5_client_t *c = mt5_client_new(s_url, 1000, "Mgr-pw", s_cert, 5000);
    char err[200] = "";
    uint64_t ticket = 0;
    CHECK_EQ_INT(mt5_ping(c, err, sizeof err), MT5_OK);
    free(s_ctl("POST", "/sim/faults", "{\"close_next\":1}"));
    CHECK_EQ_INT(mt5_ping(c, err, sizeof err), MT5_OK);
    usleep(50000);
    int before = s_deal_count();
    CHECK_EQ_INT(mt5_balance(c, 100001, 100, 2, "kasa tls close", &ticket, err, sizeof err), MT5_OK);
    CHECK_EQ_INT(mt5_auth_count(c), 2);
    CHECK_EQ_INT(s_deal_count(), before + 1);
    mt5_client_destroy(&c);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    setenv("KASA_LOG_LEVEL", "error", 0);
    const char *dir = getenv("KASA_TEST_OUT");
    snprintf(s_cert, sizeof s_cert, "%s/test_mt5_tls.%d.crt", dir ? dir : "/tmp", (int) getpid());
    snprintf(s_key, sizeof s_key, "%s/test_mt5_tls.%d.key", dir ? dir : "/tmp", (int) getpid());
    if (s_make_cert(s_cert, s_key) != 0) {
        fprintf(stderr, "cannot make a test certificate\n");
        return 1;
    }
    char err[200];
    char *argv[] = { "mt5", "--listen", "127.0.0.1:0", "--manager", "1000:Mgr-pw", "--account", "100001:pw:100.00",
                     "--tls-cert", s_cert, "--tls-key", s_key };
    s_sim = sim_mt5_start((int) (sizeof argv / sizeof argv[0]), argv, err, sizeof err);
    if (!s_sim) {
        fprintf(stderr, "sim: %s\n", err);
        return 1;
    }
    snprintf(s_url, sizeof s_url, "https://127.0.0.1:%d", sim_mt5_port(s_sim));
    RUN(test_self_signed_server_is_trusted_with_ca_file);
    RUN(test_self_signed_server_is_refused_without_ca_file);
    RUN(test_dropped_reply_over_tls_gives_one_deal);
    RUN(test_closed_tls_connection_gets_new_session_before_balance);
    sim_mt5_stop(&s_sim);
    unlink(s_cert);
    unlink(s_key);
    curl_global_cleanup();
    return check_done();
}
