/* test_cobo.c — Cobo Auth signatures (known vectors from Cobo's JS SDK, cross-checked with
 * OpenSSL), strict verification, and the API client against the Cobo simulator (started in a
 * child process on a random port), including the webhooks the simulator delivers. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "actors/cobo.h"
#include "actors/cobo_auth.h"
#include "schema/cobo_tx.h"
#include "schema/json.h"
#include "tests/check.h"
#include "tools/sim/sim.h"

/* RFC 8032 test 1 secret: its public key is known, so the key derivation is checked too. */
#define SEED "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
#define PUB "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
#define SIM_SEED "1111111111111111111111111111111111111111111111111111111111111111"
#define OTHER_SEED "2222222222222222222222222222222222222222222222222222222222222222"
#define WALLET "6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b"

/* Expected signatures, computed with the Ed25519Signer and CryptoJS double SHA-256 of
 * @cobo/cobo-waas2 1.8.0 (tweetnacl) for the same seed and strings. */
static const struct { const char *method, *path, *nonce, *params, *body, *sig; } s_req_vectors[] = {
    { "GET", "/v2/transactions/0f6b5a4e-8c1d-4b7e-9a3f-2d5c7e9b1a20", "1764142800000", "", "",
      "b41031fad71ed5455f068b251ede3046230f03ffe8a3772ddb1e041ea786409ca5af5e6feee1bbccb73e31d7ab4d4a4b54fa995d7cf02a254936bc0a7aca280f" },
    { "POST", "/v2/wallets/6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b/addresses", "1764142800123", "",
      "{\"chain_id\":\"TRON\",\"count\":1}",
      "860d4e4cc41ced2424b29eec1f1767b974d4f3da1afa3d5ec96d522a307379025beef02f5f46807261bfade68b5bd2d3778cb296814020edc0ff8bef524d0708" },
};
#define RESP_BODY "{\"event_id\":\"e1\",\"type\":\"wallets.transaction.succeeded\"}"
#define RESP_TS "1764142800000"
#define RESP_SIG "b4171ef8575933c64c3e2f3da24e7a3a424665d4d33df672c0cc3bb6619f44ab3fa35d63ce480520b536971425c4ab2973ce1a8b2ce18b2bac2f97ace6dbc500"

/* ---- signatures ------------------------------------------------------------------------------ */

static void test_pubkey_from_seed_matches_rfc8032(void)
{
    char pub[65];
    CHECK_EQ_INT(cobo_pubkey_from_seed(SEED, pub), 0);
    CHECK_EQ_STR(pub, PUB);
    cobo_signer_t *s = cobo_signer_new(SEED);
    CHECK(s != NULL);
    if (s)
        CHECK_EQ_STR(cobo_signer_pubkey_hex(s), PUB);
    cobo_signer_destroy(&s);
    cobo_signer_destroy(&s);  /* safe twice */
    CHECK(s == NULL);
}

static void test_request_signature_matches_cobo_sdk(void)
{
    cobo_signer_t *s = cobo_signer_new(SEED);
    CHECK(s != NULL);
    if (!s)
        return;
    for (size_t i = 0; i < sizeof s_req_vectors / sizeof s_req_vectors[0]; i++) {
        char sig[129];
        const char *b = s_req_vectors[i].body;
        CHECK_EQ_INT(cobo_sign_request(s, s_req_vectors[i].method, s_req_vectors[i].path, s_req_vectors[i].nonce,
                                       s_req_vectors[i].params, b, strlen(b), sig), 0);
        CHECK_EQ_STR(sig, s_req_vectors[i].sig);
    }
    char sig[129];
    cobo_sign_response(s, RESP_BODY, strlen(RESP_BODY), RESP_TS, sig);
    CHECK_EQ_STR(sig, RESP_SIG);
    cobo_signer_destroy(&s);
}

/* Ed25519 over SHA256(SHA256(msg)) with OpenSSL alone, as an independent implementation. */
static void s_openssl_sign(const char *msg, char out[129])
{
    uint8_t seed[32], h1[32], h2[32], sig[64];
    unsigned int n;
    size_t sl = sizeof sig;
    cobo_hex_decode(SEED, seed, 32);
    EVP_Digest(msg, strlen(msg), h1, &n, EVP_sha256(), NULL);
    EVP_Digest(h1, 32, h2, &n, EVP_sha256(), NULL);
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    EVP_DigestSignInit(c, NULL, NULL, NULL, k);
    EVP_DigestSign(c, sig, &sl, h2, 32);
    EVP_MD_CTX_free(c);
    EVP_PKEY_free(k);
    cobo_hex_encode(sig, 64, out);
}

static void test_signature_matches_openssl(void)
{
    cobo_signer_t *s = cobo_signer_new(SEED);
    char a[129], b[129];
    const char *msg = "GET|/v2/wallets/w1/addresses|1764142800000|after=a49&chain_ids=TRON&limit=50|";
    cobo_sign(s, msg, strlen(msg), a);
    s_openssl_sign(msg, b);
    CHECK_EQ_STR(a, b);
    cobo_sign_request(s, "GET", "/v2/wallets/w1/addresses", "1764142800000",
                      "after=a49&chain_ids=TRON&limit=50", NULL, 0, a);
    CHECK_EQ_STR(a, b);
    cobo_signer_destroy(&s);
}

static void test_verify_accepts_only_the_signed_message(void)
{
    cobo_pubkey_t key, other;
    char other_pub[65];
    CHECK_EQ_INT(cobo_pubkey_parse(PUB, &key), 0);
    CHECK_EQ_INT(cobo_pubkey_from_seed(OTHER_SEED, other_pub), 0);
    CHECK_EQ_INT(cobo_pubkey_parse(other_pub, &other), 0);
    const char *body = RESP_BODY;
    size_t n = strlen(body);
    CHECK_EQ_INT(cobo_verify_response(&key, body, n, RESP_TS, RESP_SIG), 0);
    CHECK_EQ_INT(cobo_verify_response_hex(PUB, body, n, RESP_TS, RESP_SIG), 0);
    /* upper-case hex is the same signature */
    char upper[129];
    for (int i = 0; i < 129; i++)
        upper[i] = (char) (RESP_SIG[i] >= 'a' && RESP_SIG[i] <= 'f' ? RESP_SIG[i] - 32 : RESP_SIG[i]);
    CHECK_EQ_INT(cobo_verify_response(&key, body, n, RESP_TS, upper), 0);
    /* altered body, altered timestamp, body one byte short, wrong key */
    char altered[128];
    snprintf(altered, sizeof altered, "%s", body);
    altered[5] ^= 1;
    CHECK_EQ_INT(cobo_verify_response(&key, altered, n, RESP_TS, RESP_SIG), -1);
    CHECK_EQ_INT(cobo_verify_response(&key, body, n, "1764142800001", RESP_SIG), -1);
    CHECK_EQ_INT(cobo_verify_response(&key, body, n, "", RESP_SIG), -1);
    CHECK_EQ_INT(cobo_verify_response(&key, body, n - 1, RESP_TS, RESP_SIG), -1);
    CHECK_EQ_INT(cobo_verify_response(&other, body, n, RESP_TS, RESP_SIG), -1);
    CHECK_EQ_INT(cobo_verify_response_hex(other_pub, body, n, RESP_TS, RESP_SIG), -1);
    /* the signature itself: flipped, short, odd, long, non-hex, empty, NULL */
    char sig[140];
    snprintf(sig, sizeof sig, "%s", RESP_SIG);
    sig[10] = sig[10] == '0' ? '1' : '0';
    CHECK_EQ_INT(cobo_verify_response(&key, body, n, RESP_TS, sig), -1);
    snprintf(sig, sizeof sig, "%.126s", RESP_SIG);
    CHECK_EQ_INT(cobo_verify_response(&key, body, n, RESP_TS, sig), -1);
    snprintf(sig, sizeof sig, "%.127s", RESP_SIG);
    CHECK_EQ_INT(cobo_verify_response(&key, body, n, RESP_TS, sig), -1);
    snprintf(sig, sizeof sig, "%s00", RESP_SIG);
    CHECK_EQ_INT(cobo_verify_response(&key, body, n, RESP_TS, sig), -1);
    snprintf(sig, sizeof sig, "%s", RESP_SIG);
    sig[64] = 'g';
    CHECK_EQ_INT(cobo_verify_response(&key, body, n, RESP_TS, sig), -1);
    sig[64] = ' ';
    CHECK_EQ_INT(cobo_verify_response(&key, body, n, RESP_TS, sig), -1);
    CHECK_EQ_INT(cobo_verify_response(&key, body, n, RESP_TS, ""), -1);
    CHECK_EQ_INT(cobo_verify_response(&key, body, n, RESP_TS, NULL), -1);
    CHECK_EQ_INT(cobo_verify_response(&key, body, n, NULL, RESP_SIG), -1);
    CHECK_EQ_INT(cobo_verify_response_hex("zz", body, n, RESP_TS, RESP_SIG), -1);
}

static void test_request_verify_round_trip(void)
{
    cobo_signer_t *s = cobo_signer_new(SEED);
    cobo_pubkey_t key;
    cobo_pubkey_parse(PUB, &key);
    char sig[129];
    const char *body = "{\"chain_id\":\"TRON\",\"count\":1}";
    cobo_sign_request(s, "POST", "/v2/wallets/w/addresses", "1", "", body, strlen(body), sig);
    CHECK_EQ_INT(cobo_verify_request(&key, "POST", "/v2/wallets/w/addresses", "1", "", body, strlen(body), sig), 0);
    CHECK_EQ_INT(cobo_verify_request(&key, "POST", "/v2/wallets/w/addresses", "1", NULL, body, strlen(body), sig), 0);
    CHECK_EQ_INT(cobo_verify_request(&key, "GET", "/v2/wallets/w/addresses", "1", "", body, strlen(body), sig), -1);
    CHECK_EQ_INT(cobo_verify_request(&key, "POST", "/v2/wallets/x/addresses", "1", "", body, strlen(body), sig), -1);
    CHECK_EQ_INT(cobo_verify_request(&key, "POST", "/v2/wallets/w/addresses", "2", "", body, strlen(body), sig), -1);
    CHECK_EQ_INT(cobo_verify_request(&key, "POST", "/v2/wallets/w/addresses", "1", "a=1", body, strlen(body), sig), -1);
    CHECK_EQ_INT(cobo_verify_request(&key, "POST", "/v2/wallets/w/addresses", "1", "", body, strlen(body) - 1, sig), -1);
    cobo_signer_destroy(&s);
}

static void test_hex_parsing_is_strict(void)
{
    uint8_t out[4];
    CHECK_EQ_INT(cobo_hex_decode("00ff7A9b", out, 4), 0);
    CHECK_EQ_INT(out[0], 0x00);
    CHECK_EQ_INT(out[1], 0xff);
    CHECK_EQ_INT(out[2], 0x7a);
    CHECK_EQ_INT(out[3], 0x9b);
    CHECK_EQ_INT(cobo_hex_decode("00ff7A9", out, 4), -1);
    CHECK_EQ_INT(cobo_hex_decode("00ff7A9b0", out, 4), -1);
    CHECK_EQ_INT(cobo_hex_decode("00ff7A9bcc", out, 4), -1);
    CHECK_EQ_INT(cobo_hex_decode("0xff7A9b", out, 4), -1);
    CHECK_EQ_INT(cobo_hex_decode("00ff 7A9", out, 4), -1);
    CHECK_EQ_INT(cobo_hex_decode("00ff7A9g", out, 4), -1);
    CHECK_EQ_INT(cobo_hex_decode(NULL, out, 4), -1);
    CHECK(cobo_signer_new("9d61") == NULL);
    CHECK(cobo_signer_new(SEED "00") == NULL);
    CHECK(cobo_signer_new(NULL) == NULL);
    cobo_pubkey_t k;
    CHECK_EQ_INT(cobo_pubkey_parse(PUB "0", &k), -1);
    /* 0x..ff is not the encoding of a curve point */
    CHECK_EQ_INT(cobo_pubkey_parse("ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", &k), -1);
    CHECK_EQ_INT(cobo_ct_compare("abcd", "abcd", 4), 0);
    CHECK_EQ_INT(cobo_ct_compare("abcd", "abce", 4), -1);
}

static void test_client_new_refuses_bad_configuration(void)
{
    char err[160] = "", pub[65];
    cobo_pubkey_from_seed(SIM_SEED, pub);
    cobo_client_t *c = cobo_client_new("http://api.cobo.com/v2", PUB, SEED, pub, 1000, err, sizeof err);
    CHECK(c == NULL);
    CHECK(strstr(err, "https") != NULL);
    c = cobo_client_new("https://api.cobo.com/v2", pub, SEED, pub, 1000, err, sizeof err);
    CHECK(c == NULL);
    CHECK(strstr(err, "not the public key") != NULL);
    CHECK(strstr(err, SEED) == NULL);
    c = cobo_client_new("https://api.cobo.com/v2", PUB, "xyz", pub, 1000, err, sizeof err);
    CHECK(c == NULL);
    c = cobo_client_new("https://api.cobo.com/v2", PUB, SEED, "00", 1000, err, sizeof err);
    CHECK(c == NULL);
    c = cobo_client_new("https://api.cobo.com/v2/", PUB, SEED, pub, 1000, err, sizeof err);
    CHECK(c != NULL);
    cobo_client_destroy(&c);
    cobo_client_destroy(&c);
}

/* ---- the simulator and a webhook receiver ------------------------------------------------------ */

static pid_t s_sim_pid;
static int s_sim_port;
static char s_base[64], s_sim_url[64], s_sim_pub[65];

/* What the receiver saw: every webhook's verified, parsed event. */
#define MAX_SEEN 128
static struct {
    pthread_mutex_t lock;
    int requests, bad_sig, parse_fail, fail_first;
    cobo_event_t ev[MAX_SEEN];
    int n;
} R = { .lock = PTHREAD_MUTEX_INITIALIZER };

typedef struct {
    jbuf_t body;
} s_rreq_t;

static enum MHD_Result s_receiver(void *cls, struct MHD_Connection *con, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **req_cls)
{
    (void) cls, (void) url, (void) method, (void) version;
    s_rreq_t *r = *req_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        jbuf_init(&r->body);
        *req_cls = r;
        return MHD_YES;
    }
    if (*upload_size) {
        jbuf_add(&r->body, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    const char *ts = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Biz-Timestamp");
    const char *sig = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Biz-Resp-Signature");
    unsigned status = 200;
    pthread_mutex_lock(&R.lock);
    R.requests++;
    if (R.fail_first > 0) {
        R.fail_first--;
        status = 500;
    } else if (!r->body.data || cobo_verify_response_hex(s_sim_pub, r->body.data, r->body.len, ts, sig) != 0) {
        R.bad_sig++;
        status = 401;
    } else {
        char err[160];
        cobo_event_t ev;
        if (cobo_event_parse(r->body.data, r->body.len, &ev, err, sizeof err) != 0) {
            R.parse_fail++;
            status = 400;
        } else if (R.n < MAX_SEEN) {
            R.ev[R.n++] = ev;
        }
    }
    pthread_mutex_unlock(&R.lock);
    struct MHD_Response *resp = MHD_create_response_from_buffer(2, (void *) "ok", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result rc = MHD_queue_response(con, status, resp);
    MHD_destroy_response(resp);
    jbuf_free(&r->body);
    free(r);
    *req_cls = NULL;
    return rc;
}

/* A loopback listening socket on a free port. */
static int s_listen_any(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = 0 };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, (struct sockaddr *) &sa, sizeof sa) != 0 || listen(fd, 64) != 0
        || getsockname(fd, (struct sockaddr *) &sa, &sl) != 0)
        return -1;
    *port = ntohs(sa.sin_port);
    return fd;
}

/* Starts the simulator in a child process (before this process has any thread). */
static int s_sim_start(int hook_port)
{
    int pfd[2];
    if (pipe(pfd) != 0)
        return -1;
    char hook[64], pub[65];
    snprintf(hook, sizeof hook, "http://127.0.0.1:%d/cobo/webhook", hook_port);
    cobo_pubkey_from_seed(SEED, pub);
    fflush(stdout);
    fflush(stderr);
    s_sim_pid = fork();
    if (s_sim_pid == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        char *argv[] = { "cobo", "--listen", "127.0.0.1:0", "--webhook-url", hook, "--key-seed", SIM_SEED,
                         "--client-key", pub, "--seed", "7", NULL };
        _exit(sim_cobo_main(11, argv));
    }
    close(pfd[1]);
    FILE *f = fdopen(pfd[0], "r");
    char line[256] = "";
    if (!f || !fgets(line, sizeof line, f) || sscanf(line, "listening on 127.0.0.1:%d", &s_sim_port) != 1) {
        fprintf(stderr, "simulator did not start: %s\n", line);
        return -1;
    }
    fclose(f);
    snprintf(s_sim_url, sizeof s_sim_url, "http://127.0.0.1:%d", s_sim_port);
    snprintf(s_base, sizeof s_base, "http://127.0.0.1:%d/v2", s_sim_port);
    cobo_pubkey_from_seed(SIM_SEED, s_sim_pub);
    return 0;
}

static size_t s_collect(char *d, size_t s, size_t n, void *a)
{
    jbuf_add(a, d, s * n);
    return s * n;
}

/* Unsigned call to the control API; returns the status, body in *out (caller frees). */
static long s_control(const char *method, const char *path, const char *body, char **out)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", s_sim_url, path);
    jbuf_t b;
    jbuf_init(&b);
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    if (strcmp(method, "POST") == 0)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    *out = jbuf_take(&b);
    return status;
}

static cobo_client_t *s_client(long timeout_ms)
{
    char err[160] = "";
    cobo_client_t *c = cobo_client_new(s_base, PUB, SEED, s_sim_pub, timeout_ms, err, sizeof err);
    if (!c)
        fprintf(stderr, "client: %s\n", err);
    return c;
}

/* Creates a deposit through the control API; its id into id. */
static int s_deposit(const char *body, char id[80])
{
    char *out = NULL;
    long st = s_control("POST", "/sim/deposit", body, &out);
    bson_t doc;
    char err[64];
    int rc = -1;
    if (st == 201 && json_parse(out, strlen(out), &doc, err, sizeof err) == 0) {
        const char *t = json_get_str(&doc, "transaction_id");
        if (t && strlen(t) < 80) {
            strcpy(id, t);
            rc = 0;
        }
        bson_destroy(&doc);
    }
    free(out);
    return rc;
}

static int s_is_base58(const char *s)
{
    for (; *s; s++)
        if (!strchr("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz", *s))
            return 0;
    return 1;
}

static void test_client_gets_a_transaction(void)
{
    cobo_client_t *c = s_client(3000);
    char id[80] = "", err[200] = "";
    CHECK_EQ_INT(s_deposit("{\"address\":\"TXYZopYRdj2D9XRtbG411XZZ3kM5VkAeBf\",\"amount\":\"250.5\","
                           "\"token_id\":\"TRON_USDT\",\"confirmations\":2}", id), 0);
    cobo_tx_t tx;
    cobo_err_t e = cobo_get_transaction(c, id, &tx, err, sizeof err);
    CHECK_EQ_STR(cobo_err_name(e), "ok");
    CHECK_EQ_STR(tx.tx_id, id);
    CHECK_EQ_STR(tx.type, "Deposit");
    CHECK_EQ_STR(tx.status, "Completed");
    CHECK_EQ_STR(tx.amount, "250.5");
    CHECK_EQ_STR(tx.chain_id, "TRON");
    CHECK_EQ_STR(tx.token_id, "TRON_USDT");
    CHECK_EQ_STR(tx.address, "TXYZopYRdj2D9XRtbG411XZZ3kM5VkAeBf");
    CHECK_EQ_INT(tx.confirmations, 2);
    CHECK_EQ_INT(tx.threshold, 2);
    CHECK_EQ_INT(cobo_client_http_status(c), 200);
    /* an unknown id is Cobo's 404 with an error body; a bad id is refused before sending */
    e = cobo_get_transaction(c, "00000000-0000-4000-8000-00000000dead", &tx, err, sizeof err);
    CHECK_EQ_INT(e, COBO_ERR_HTTP_4XX);
    CHECK_EQ_INT(cobo_client_http_status(c), 404);
    CHECK(strstr(err, "not found") != NULL);
    CHECK_EQ_INT(cobo_get_transaction(c, "../wallets", &tx, err, sizeof err), COBO_ERR_ARG);
    CHECK_EQ_INT(cobo_get_transaction(c, "a b", &tx, err, sizeof err), COBO_ERR_ARG);
    int dec = -1;
    CHECK_EQ_INT(cobo_get_token_decimal(c, "TRON_USDT", &dec, err, sizeof err), COBO_OK);
    CHECK_EQ_INT(dec, 6);
    CHECK_EQ_INT(cobo_get_token_decimal(c, "ETH", &dec, err, sizeof err), COBO_OK);
    CHECK_EQ_INT(dec, 18);
    cobo_client_destroy(&c);
}

typedef struct {
    char want[80];
    int found, count, tron_ok, eth_ok;
} s_list_t;

static int s_on_address(void *arg, const char *address, const char *chain)
{
    s_list_t *l = arg;
    l->count++;
    if (strcmp(address, l->want) == 0)
        l->found = 1;
    if (strcmp(chain, "TRON") == 0 && (address[0] != 'T' || strlen(address) != 34 || !s_is_base58(address)))
        l->tron_ok = 0;
    if (strcmp(chain, "ETH") == 0 && (strncmp(address, "0x", 2) != 0 || strlen(address) != 42))
        l->eth_ok = 0;
    return 0;
}

static void test_client_creates_and_lists_addresses(void)
{
    cobo_client_t *c = s_client(3000);
    char addr[128] = "", first[128] = "", err[200] = "";
    CHECK_EQ_INT(cobo_create_address(c, WALLET, "TRON", first, sizeof first, err, sizeof err), COBO_OK);
    CHECK_EQ_INT(cobo_client_http_status(c), 201);
    CHECK(first[0] == 'T' && strlen(first) == 34 && s_is_base58(first));
    for (int i = 0; i < 60; i++)
        CHECK_EQ_INT(cobo_create_address(c, WALLET, "TRON", addr, sizeof addr, err, sizeof err), COBO_OK);
    CHECK(strcmp(addr, first) != 0);
    char eth[128] = "";
    CHECK_EQ_INT(cobo_create_address(c, WALLET, "ETH", eth, sizeof eth, err, sizeof err), COBO_OK);
    CHECK(strncmp(eth, "0x", 2) == 0 && strlen(eth) == 42);
    /* 61 TRON addresses: two pages of 50; the ETH one is filtered out */
    s_list_t l = { .tron_ok = 1, .eth_ok = 1 };
    strcpy(l.want, first);
    CHECK_EQ_INT(cobo_list_addresses(c, WALLET, "TRON", s_on_address, &l, err, sizeof err), COBO_OK);
    CHECK_EQ_INT(l.count, 61);
    CHECK_EQ_INT(l.found, 1);
    CHECK_EQ_INT(l.tron_ok, 1);
    s_list_t all = { .tron_ok = 1, .eth_ok = 1 };
    strcpy(all.want, eth);
    CHECK_EQ_INT(cobo_list_addresses(c, WALLET, NULL, s_on_address, &all, err, sizeof err), COBO_OK);
    CHECK_EQ_INT(all.count, 62);
    CHECK_EQ_INT(all.found, 1);
    CHECK_EQ_INT(all.eth_ok, 1);
    /* a too small output buffer is a malformed-for-us answer, not an overflow */
    char tiny[8];
    CHECK_EQ_INT(cobo_create_address(c, WALLET, "TRON", tiny, sizeof tiny, err, sizeof err), COBO_ERR_MALFORMED);
    cobo_client_destroy(&c);
}

/* ---- balances ---- */

typedef struct {
    int n;
    char names[8][64];
    cobo_balance_t b[8];
} s_bals_t;

static int s_on_balance(void *arg, const char *name, const cobo_balance_t *b)
{
    s_bals_t *l = arg;
    if (l->n < 8) {
        snprintf(l->names[l->n], sizeof l->names[0], "%s", name);
        l->b[l->n] = *b;
    }
    l->n++;
    return 0;
}

static void test_client_lists_balances_by_wallet_and_by_address_every_page(void)
{
    /* a wallet of its own: USDT at two addresses (one deposit still confirming), TRX at one */
    static const char *const deposits[] = {
        "{\"wallet_id\":\"bal-wallet\",\"address\":\"TBalA1111\",\"amount\":\"1.5\",\"token_id\":\"TRON_USDT\",\"confirmations\":1}",
        "{\"wallet_id\":\"bal-wallet\",\"address\":\"TBalA1111\",\"amount\":\"0.000001\",\"token_id\":\"TRON_USDT\",\"confirmations\":1}",
        "{\"wallet_id\":\"bal-wallet\",\"address\":\"TBalB2222\",\"amount\":\"2\",\"token_id\":\"TRON_USDT\",\"confirmations\":1}",
        "{\"wallet_id\":\"bal-wallet\",\"address\":\"TBalB2222\",\"amount\":\"10\",\"token_id\":\"TRON_USDT\",\"confirmations\":20,\"final\":null}",
        "{\"wallet_id\":\"bal-wallet\",\"address\":\"TBalC3333\",\"amount\":\"7.25\",\"token_id\":\"TRON\",\"confirmations\":1}",
    };
    char id[80];
    for (size_t i = 0; i < sizeof deposits / sizeof deposits[0]; i++)
        CHECK_EQ_INT(s_deposit(deposits[i], id), 0);
    cobo_client_t *c = s_client(3000);
    char err[200] = "";
    s_bals_t w = { 0 };   /* one token per page: two pages */
    CHECK_EQ_INT(cobo_list_token_balances(c, "bal-wallet", 1, s_on_balance, &w, err, sizeof err), COBO_OK);
    CHECK_EQ_INT(w.n, 2);
    CHECK_EQ_STR(w.names[0], "TRON_USDT");
    CHECK_EQ_STR(w.b[0].total, "13.500001");
    CHECK_EQ_STR(w.b[0].available, "3.500001");
    CHECK_EQ_STR(w.b[0].pending, "10");
    CHECK_EQ_STR(w.b[0].locked, "0");
    CHECK_EQ_STR(w.b[0].frozen, "0");
    CHECK_EQ_STR(w.names[1], "TRON");
    CHECK_EQ_STR(w.b[1].total, "7.25");
    s_bals_t a = { 0 };   /* one address per page */
    CHECK_EQ_INT(cobo_list_address_balances(c, "bal-wallet", "TRON_USDT", NULL, 1, s_on_balance, &a, err, sizeof err),
                 COBO_OK);
    CHECK_EQ_INT(a.n, 2);
    CHECK_EQ_STR(a.names[0], "TBalA1111");
    CHECK_EQ_STR(a.b[0].available, "1.500001");
    CHECK_EQ_STR(a.names[1], "TBalB2222");
    CHECK_EQ_STR(a.b[1].total, "12");
    s_bals_t one = { 0 };  /* only the addresses asked for */
    CHECK_EQ_INT(cobo_list_address_balances(c, "bal-wallet", "TRON_USDT", "TBalB2222", 50, s_on_balance, &one, err,
                                            sizeof err), COBO_OK);
    CHECK_EQ_INT(one.n, 1);
    CHECK_EQ_STR(one.names[0], "TBalB2222");
    CHECK_EQ_INT(cobo_list_token_balances(c, "bal-wallet", 51, s_on_balance, &w, err, sizeof err), COBO_ERR_ARG);
    CHECK_EQ_INT(cobo_list_address_balances(c, "bal-wallet", "../x", NULL, 10, s_on_balance, &w, err, sizeof err),
                 COBO_ERR_ARG);
    cobo_client_destroy(&c);
}

static void test_wrong_api_key_gets_2024(void)
{
    char err[200] = "", pub[65];
    cobo_pubkey_from_seed(OTHER_SEED, pub);
    cobo_client_t *c = cobo_client_new(s_base, pub, OTHER_SEED, s_sim_pub, 3000, err, sizeof err);
    CHECK(c != NULL);
    if (!c)
        return;
    char addr[128];
    CHECK_EQ_INT(cobo_create_address(c, WALLET, "TRON", addr, sizeof addr, err, sizeof err), COBO_ERR_HTTP_4XX);
    CHECK_EQ_INT(cobo_client_http_status(c), 401);
    CHECK_EQ_INT(cobo_client_error_code(c), 2024);
    CHECK(strstr(err, "2024") != NULL);
    cobo_client_destroy(&c);
}

static void test_broken_response_signature_is_rejected(void)
{
    cobo_client_t *c = s_client(3000);
    char *out = NULL, err[200] = "", id[80] = "";
    CHECK_EQ_INT(s_deposit("{\"address\":\"TXYZopYRdj2D9XRtbG411XZZ3kM5VkAeBf\",\"amount\":\"1\"}", id), 0);
    CHECK_EQ_INT(s_control("POST", "/sim/faults", "{\"bad_signature_once\":true}", &out), 200);
    free(out);
    cobo_tx_t tx;
    memset(&tx, 0, sizeof tx);
    CHECK_EQ_INT(cobo_get_transaction(c, id, &tx, err, sizeof err), COBO_ERR_SIGNATURE);
    CHECK_EQ_STR(tx.tx_id, "");  /* nothing of it was used */
    CHECK_EQ_INT(cobo_get_transaction(c, id, &tx, err, sizeof err), COBO_OK);
    cobo_client_destroy(&c);
    /* a client that expects another key refuses every answer */
    char pub[65];
    cobo_pubkey_from_seed(OTHER_SEED, pub);
    c = cobo_client_new(s_base, PUB, SEED, pub, 3000, err, sizeof err);
    CHECK_EQ_INT(cobo_get_transaction(c, id, &tx, err, sizeof err), COBO_ERR_SIGNATURE);
    cobo_client_destroy(&c);
}

static void test_underscore_signature_headers_are_accepted(void)
{
    cobo_client_t *c = s_client(3000);
    char *out = NULL, err[200] = "";
    int dec = -1;
    CHECK_EQ_INT(s_control("POST", "/sim/faults", "{\"underscore_headers\":true}", &out), 200);
    CHECK(out && strstr(out, "\"underscore_headers\":true") != NULL);
    free(out);
    CHECK_EQ_INT(cobo_get_token_decimal(c, "TRON", &dec, err, sizeof err), COBO_OK);
    CHECK_EQ_INT(dec, 6);
    CHECK_EQ_INT(s_control("POST", "/sim/faults", "{\"underscore_headers\":false}", &out), 200);
    free(out);
    cobo_client_destroy(&c);
}

static void test_injected_503_is_a_5xx_with_2026(void)
{
    cobo_client_t *c = s_client(3000);
    char *out = NULL, err[200] = "", addr[128];
    CHECK_EQ_INT(s_control("POST", "/sim/faults", "{\"fail_next\":1}", &out), 200);
    free(out);
    CHECK_EQ_INT(cobo_create_address(c, WALLET, "TRON", addr, sizeof addr, err, sizeof err), COBO_ERR_HTTP_5XX);
    CHECK_EQ_INT(cobo_client_http_status(c), 503);
    CHECK_EQ_INT(cobo_client_error_code(c), 2026);
    CHECK_EQ_INT(cobo_create_address(c, WALLET, "TRON", addr, sizeof addr, err, sizeof err), COBO_OK);
    cobo_client_destroy(&c);
}

static int s_count_all(void *arg, const char *address, const char *chain)
{
    (void) address, (void) chain;
    (*(int *) arg)++;
    return 0;
}

static void test_timed_out_creation_is_found_by_listing(void)
{
    cobo_client_t *c = s_client(500);
    char *out = NULL, err[200] = "", addr[128];
    const char *wallet = "7a7a7a7a-0000-4000-8000-000000000001";
    CHECK_EQ_INT(s_control("POST", "/sim/faults", "{\"create_address_timeout_once\":true,\"hang_ms\":1500}", &out), 200);
    free(out);
    CHECK_EQ_INT(cobo_create_address(c, wallet, "TRON", addr, sizeof addr, err, sizeof err), COBO_ERR_TRANSPORT);
    CHECK_EQ_STR(addr, "");
    int n = 0;
    CHECK_EQ_INT(cobo_list_addresses(c, wallet, "TRON", s_count_all, &n, err, sizeof err), COBO_OK);
    CHECK_EQ_INT(n, 1);  /* the timed-out creation did apply */
    cobo_client_destroy(&c);
}

static void test_unreachable_server_is_transport(void)
{
    int port = 0, fd = s_listen_any(&port);
    close(fd);  /* nobody listens there now */
    char base[64], err[200] = "";
    snprintf(base, sizeof base, "http://127.0.0.1:%d/v2", port);
    cobo_client_t *c = cobo_client_new(base, PUB, SEED, s_sim_pub, 1000, err, sizeof err);
    cobo_tx_t tx;
    CHECK_EQ_INT(cobo_get_transaction(c, "abc", &tx, err, sizeof err), COBO_ERR_TRANSPORT);
    CHECK(strncmp(err, "transport", 9) == 0);
    cobo_client_destroy(&c);
}

/* Waits until the simulator reports no delivery pending (bounded). */
static int s_wait_delivered(int max_ms)
{
    for (int waited = 0; waited < max_ms; waited += 100) {
        char *out = NULL;
        long st = s_control("GET", "/sim/deposits", NULL, &out);
        int done = st == 200 && out && !strstr(out, "\"delivery_pending\":true");
        free(out);
        if (done)
            return 0;
        usleep(100 * 1000);
    }
    return -1;
}

static void test_deposit_lifecycle_arrives_as_signed_webhooks(void)
{
    CHECK_EQ_INT(s_wait_delivered(20000), 0);
    pthread_mutex_lock(&R.lock);
    R.n = 0;
    R.fail_first = 1;  /* the first delivery fails: the simulator must retry */
    int before = R.requests;
    pthread_mutex_unlock(&R.lock);
    char id[80] = "";
    CHECK_EQ_INT(s_deposit("{\"address\":\"TXYZopYRdj2D9XRtbG411XZZ3kM5VkAeBf\",\"amount\":\"99.000001\","
                           "\"confirmations\":3,\"duplicates\":1}", id), 0);
    CHECK_EQ_INT(s_wait_delivered(20000), 0);
    pthread_mutex_lock(&R.lock);
    /* created + 2 updates (Confirming 1, 2) + updated(Completed) + succeeded = 5 events, each twice */
    int mine = 0, created = 0, succeeded = 0, completed = 0, max_conf = 0;
    for (int i = 0; i < R.n; i++) {
        const cobo_event_t *ev = &R.ev[i];
        if (!ev->is_transaction || strcmp(ev->tx.tx_id, id) != 0)
            continue;
        mine++;
        created += strcmp(ev->type, "wallets.transaction.created") == 0;
        succeeded += strcmp(ev->type, "wallets.transaction.succeeded") == 0;
        completed += strcmp(ev->tx.status, "Completed") == 0;
        if (ev->tx.confirmations > max_conf)
            max_conf = ev->tx.confirmations;
        CHECK_EQ_STR(ev->tx.amount, "99.000001");
        CHECK_EQ_STR(ev->tx.type, "Deposit");
    }
    CHECK_EQ_INT(mine, 10);
    CHECK_EQ_INT(created, 2);
    CHECK_EQ_INT(succeeded, 2);
    CHECK_EQ_INT(completed, 4);
    CHECK_EQ_INT(max_conf, 3);
    CHECK_EQ_INT(R.bad_sig, 0);
    CHECK_EQ_INT(R.parse_fail, 0);
    CHECK_EQ_INT(R.requests - before, 11);  /* ten events plus the one failed attempt */
    pthread_mutex_unlock(&R.lock);
    char *out = NULL;
    CHECK_EQ_INT(s_control("GET", "/sim/deposits", NULL, &out), 200);
    CHECK(out && strstr(out, "\"codes\":[500,200") != NULL);
    free(out);
}


/* A hand-signed GET with the given nonce; returns the HTTP status and Cobo's error code. */
static long s_signed_get(const char *path, const char *nonce, int *error_code)
{
    cobo_signer_t *s = cobo_signer_new(SEED);
    char sig[129], url[256], h1[120], h2[64], h3[200];
    cobo_sign_request(s, "GET", path, nonce, "", NULL, 0, sig);
    cobo_signer_destroy(&s);
    snprintf(url, sizeof url, "%s%s", s_sim_url, path);
    snprintf(h1, sizeof h1, "Biz-Api-Key: %s", PUB);
    snprintf(h2, sizeof h2, "Biz-Api-Nonce: %s", nonce);
    snprintf(h3, sizeof h3, "Biz-Api-Signature: %s", sig);
    struct curl_slist *h = curl_slist_append(NULL, h1);
    h = curl_slist_append(h, h2);
    h = curl_slist_append(h, h3);
    jbuf_t b;
    jbuf_init(&b);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    *error_code = 0;
    bson_t doc;
    char err[64];
    int64_t code;
    if (b.data && json_parse(b.data, b.len, &doc, err, sizeof err) == 0) {
        if (json_get_i64(&doc, "error_code", &code) == 0)
            *error_code = (int) code;
        bson_destroy(&doc);
    }
    jbuf_free(&b);
    return status;
}

static void test_stale_nonce_is_refused(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long now = (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    char nonce[32];
    int code = 0;
    snprintf(nonce, sizeof nonce, "%lld", now);
    CHECK_EQ_INT(s_signed_get("/v2/wallets/tokens/TRON", nonce, &code), 200);
    snprintf(nonce, sizeof nonce, "%lld", now - 6 * 60 * 1000);
    CHECK_EQ_INT(s_signed_get("/v2/wallets/tokens/TRON", nonce, &code), 401);
    CHECK_EQ_INT(code, 2024);
    snprintf(nonce, sizeof nonce, "%lld", now + 6 * 60 * 1000);
    CHECK_EQ_INT(s_signed_get("/v2/wallets/tokens/TRON", nonce, &code), 401);
    CHECK_EQ_INT(s_signed_get("/v2/wallets/tokens/TRON", "abc", &code), 401);
}

/* Counts the received events of transaction id (R.lock held by the caller). */
static int s_seen(const char *id, const char *status)
{
    int n = 0;
    for (int i = 0; i < R.n; i++)
        if (strcmp(R.ev[i].tx.tx_id, id) == 0 && (!status || strcmp(R.ev[i].tx.status, status) == 0))
            n++;
    return n;
}

static void test_reordered_duplicates_all_arrive(void)
{
    CHECK_EQ_INT(s_wait_delivered(20000), 0);
    pthread_mutex_lock(&R.lock);
    R.n = 0;
    pthread_mutex_unlock(&R.lock);
    char id[80] = "";
    CHECK_EQ_INT(s_deposit("{\"address\":\"0x52908400098527886e0f7030069857d2e4169ee7\",\"amount\":\"0.123456789012345678\","
                           "\"token_id\":\"ETH\",\"confirmations\":2,\"duplicates\":2,\"reorder\":true}", id), 0);
    CHECK_EQ_INT(s_wait_delivered(20000), 0);
    pthread_mutex_lock(&R.lock);
    /* created, updated(1), updated(Completed), succeeded: 4 events, 3 copies each */
    CHECK_EQ_INT(s_seen(id, NULL), 12);
    CHECK_EQ_INT(s_seen(id, "Completed"), 6);
    for (int i = 0; i < R.n; i++)
        if (strcmp(R.ev[i].tx.tx_id, id) == 0) {
            CHECK_EQ_STR(R.ev[i].tx.chain_id, "ETH");
            CHECK_EQ_STR(R.ev[i].tx.amount, "0.123456789012345678");
            CHECK(strncmp(R.ev[i].tx.tx_hash, "0x", 2) == 0);
        }
    pthread_mutex_unlock(&R.lock);
}

static void test_status_change_is_served_and_notified(void)
{
    CHECK_EQ_INT(s_wait_delivered(20000), 0);
    char id[80] = "", path[160], *out = NULL, err[200] = "";
    CHECK_EQ_INT(s_deposit("{\"address\":\"TXYZopYRdj2D9XRtbG411XZZ3kM5VkAeBf\",\"amount\":\"5\",\"final\":null,"
                           "\"confirmations\":1}", id), 0);
    cobo_client_t *c = s_client(3000);
    cobo_tx_t tx;
    CHECK_EQ_INT(cobo_get_transaction(c, id, &tx, err, sizeof err), COBO_OK);
    CHECK_EQ_STR(tx.status, "Confirming");
    CHECK_EQ_INT(s_wait_delivered(20000), 0);
    pthread_mutex_lock(&R.lock);
    R.n = 0;
    pthread_mutex_unlock(&R.lock);
    snprintf(path, sizeof path, "/sim/transactions/%s", id);
    CHECK_EQ_INT(s_control("POST", path, "{\"status\":\"Failed\",\"sub_status\":\"ReOrged\"}", &out), 200);
    free(out);
    CHECK_EQ_INT(cobo_get_transaction(c, id, &tx, err, sizeof err), COBO_OK);
    CHECK_EQ_STR(tx.status, "Failed");
    CHECK_EQ_STR(tx.sub_status, "ReOrged");
    CHECK_EQ_INT(s_wait_delivered(20000), 0);
    pthread_mutex_lock(&R.lock);
    CHECK_EQ_INT(s_seen(id, "Failed"), 1);
    pthread_mutex_unlock(&R.lock);
    CHECK_EQ_INT(s_control("POST", "/sim/transactions/nope", "{\"status\":\"Failed\"}", &out), 404);
    free(out);
    cobo_client_destroy(&c);
}

/* ---- transfers (withdrawals) ----------------------------------------------------------------- */

#define TR_WALLET "5e5e5e5e-0000-4000-8000-00000000aaaa"
#define TR_TO "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"

static cobo_transfer_t s_tr(const char *request_id, const char *amount)
{
    cobo_transfer_t t = { .request_id = request_id, .wallet_id = TR_WALLET, .token_id = "TRON_USDT",
                          .address = TR_TO, .amount = amount, .fee_level = "Recommended",
                          .description = "kasa withdrawal" };
    return t;
}

/* 1 if Cobo's API (GET /v2/wallets/{id}/tokens) shows wallet/token available at exactly amount. */
static int s_balance_is(const char *wallet, const char *token, const char *amount)
{
    cobo_client_t *c = s_client(3000);
    s_bals_t l = { .n = 0 };
    char err[200] = "";
    int ok = c && cobo_list_token_balances(c, wallet, 50, s_on_balance, &l, err, sizeof err) == COBO_OK;
    int hit = 0;
    for (int i = 0; ok && i < l.n && i < 8; i++)
        hit |= strcmp(l.names[i], token) == 0 && strcmp(l.b[i].available, amount) == 0;
    if (!hit)
        fprintf(stderr, "  %s %s: not available at %s (%s)\n", wallet, token, amount, err);
    cobo_client_destroy(&c);
    return hit;
}

static void s_faults(const char *body)
{
    char *out = NULL;
    CHECK_EQ_INT(s_control("POST", "/sim/faults", body, &out), 200);
    free(out);
}

static void test_status_names_and_finality(void)
{
    const char *names[] = { "Submitted", "PendingScreening", "PendingAuthorization", "PendingSignature",
                            "Broadcasting", "Confirming", "Pending", "Completed", "Failed", "Rejected" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        cobo_status_t st = cobo_status_parse(names[i]);
        CHECK(st != COBO_STATUS_UNKNOWN);
        CHECK_EQ_STR(cobo_status_name(st), names[i]);
        CHECK_EQ_INT(cobo_status_is_final(st), i >= 7);
    }
    CHECK_EQ_INT(cobo_status_parse("Cancelled"), COBO_STATUS_UNKNOWN);
    CHECK_EQ_INT(cobo_status_parse(NULL), COBO_STATUS_UNKNOWN);
    CHECK_EQ_INT(cobo_status_is_final(COBO_STATUS_UNKNOWN), 0);
}

static void test_transfer_is_created_goes_through_its_statuses_and_takes_the_balance(void)
{
    CHECK_EQ_INT(s_wait_delivered(20000), 0);
    char *out = NULL;
    CHECK_EQ_INT(s_control("POST", "/sim/balances", "{\"wallet_id\":\"" TR_WALLET "\",\"token_id\":\"TRON_USDT\","
                                                    "\"amount\":\"1000\"}", &out), 200);
    free(out);
    pthread_mutex_lock(&R.lock);
    R.n = 0;
    pthread_mutex_unlock(&R.lock);
    cobo_client_t *c = s_client(3000);
    cobo_transfer_t t = s_tr("kasa-w00000000000000000001-1", "99.5");
    cobo_transfer_result_t res;
    CHECK_EQ_INT(cobo_transfer(c, &t, &res), COBO_TRANSFER_CREATED);
    CHECK_EQ_INT(res.http_status, 201);
    CHECK_EQ_STR(res.status, "Submitted");
    CHECK(strlen(res.transaction_id) == 36);
    CHECK(s_balance_is(TR_WALLET, "TRON_USDT", "900.5"));
    CHECK_EQ_INT(s_wait_delivered(20000), 0);
    pthread_mutex_lock(&R.lock);
    const char *order[] = { "Submitted", "PendingScreening", "PendingAuthorization", "PendingSignature",
                            "Broadcasting", "Confirming", "Completed", "Completed" };
    int k = 0;
    for (int i = 0; i < R.n; i++) {
        const cobo_tx_t *tx = &R.ev[i].tx;
        if (strcmp(tx->tx_id, res.transaction_id) != 0)
            continue;
        CHECK(k < 8);
        if (k < 8)
            CHECK_EQ_STR(tx->status, order[k]);
        k++;
        CHECK_EQ_STR(tx->type, "Withdrawal");
        CHECK_EQ_STR(tx->request_id, "kasa-w00000000000000000001-1");
        CHECK_EQ_STR(tx->address, TR_TO);
        CHECK_EQ_STR(tx->amount, "99.5");
        CHECK_EQ_STR(tx->source_type, "Asset");
    }
    CHECK_EQ_INT(k, 8);
    CHECK_EQ_INT(R.bad_sig + R.parse_fail, 0);
    pthread_mutex_unlock(&R.lock);
    cobo_tx_t found;
    char err[200] = "";
    CHECK_EQ_INT(cobo_find_transfer(c, "kasa-w00000000000000000001-1", &found, err, sizeof err), COBO_FIND_FOUND);
    CHECK_EQ_STR(found.tx_id, res.transaction_id);
    CHECK_EQ_STR(found.status, "Completed");
    CHECK(found.tx_hash[0] != '\0');
    cobo_client_destroy(&c);
}

static void test_reused_request_id_is_a_duplicate_with_either_code(void)
{
    cobo_client_t *c = s_client(3000);
    cobo_transfer_t t = s_tr("kasa-w00000000000000000002-1", "1");
    cobo_transfer_result_t res;
    CHECK_EQ_INT(cobo_transfer(c, &t, &res), COBO_TRANSFER_CREATED);
    CHECK_EQ_INT(cobo_transfer(c, &t, &res), COBO_TRANSFER_DUPLICATE);
    CHECK_EQ_INT(res.error_code, 12009);
    CHECK_EQ_INT(res.http_status, 400);
    s_faults("{\"duplicate_code\":30001}");
    CHECK_EQ_INT(cobo_transfer(c, &t, &res), COBO_TRANSFER_DUPLICATE);
    CHECK_EQ_INT(res.error_code, 30001);
    s_faults("{\"duplicate_code\":12009}");
    cobo_tx_t found;
    char err[200] = "";
    CHECK_EQ_INT(cobo_find_transfer(c, "kasa-w00000000000000000002-1", &found, err, sizeof err), COBO_FIND_FOUND);
    CHECK_EQ_INT(cobo_find_transfer(c, "kasa-w0000000000000000ffff-1", &found, err, sizeof err), COBO_FIND_NOT_THERE);
    CHECK_EQ_INT(cobo_find_transfer(c, "bad/id", &found, err, sizeof err), COBO_FIND_UNKNOWN);
    cobo_client_destroy(&c);
}

/* An amount with more decimals than the token has at Cobo (TRON_USDT: 6) is never sent. */
static void test_transfer_with_more_decimals_than_the_token_is_never_sent(void)
{
    cobo_client_t *c = s_client(3000);
    cobo_transfer_t t = s_tr("kasa-w0000000000000000dec7-1", "1.1234567");
    cobo_transfer_result_t res;
    CHECK_EQ_INT(cobo_transfer(c, &t, &res), COBO_TRANSFER_INVALID);
    CHECK(strstr(res.message, "more decimals than TRON_USDT has at Cobo (6)") != NULL);
    CHECK_EQ_INT(res.http_status, 0);
    cobo_tx_t found;
    char err[200] = "";
    CHECK_EQ_INT(cobo_find_transfer(c, "kasa-w0000000000000000dec7-1", &found, err, sizeof err), COBO_FIND_NOT_THERE);
    t = s_tr("kasa-w0000000000000000dec6-1", "1.123456");   /* six: sent */
    CHECK_EQ_INT(cobo_transfer(c, &t, &res), COBO_TRANSFER_CREATED);
    cobo_client_destroy(&c);
}

static void test_transfer_timed_out_after_creating_is_unknown_then_found(void)
{
    cobo_client_t *c = s_client(400);
    s_faults("{\"transfer_timeout_once\":true,\"hang_ms\":1200}");
    cobo_transfer_t t = s_tr("kasa-w00000000000000000003-1", "2");
    cobo_transfer_result_t res;
    CHECK_EQ_INT(cobo_transfer(c, &t, &res), COBO_TRANSFER_UNKNOWN);
    CHECK_EQ_INT(res.http_status, 0);
    cobo_tx_t found;
    char err[200] = "";
    CHECK_EQ_INT(cobo_find_transfer(c, "kasa-w00000000000000000003-1", &found, err, sizeof err), COBO_FIND_FOUND);
    CHECK_EQ_STR(found.request_id, "kasa-w00000000000000000003-1");
    CHECK_EQ_INT(cobo_transfer(c, &t, &res), COBO_TRANSFER_DUPLICATE);  /* the same id again: never a second */
    usleep(1000 * 1000);  /* the hung answer finishes before the next test */
    cobo_client_destroy(&c);
}

static void test_5xx_after_creating_is_unknown_and_503_before_is_not_there(void)
{
    cobo_client_t *c = s_client(3000);
    cobo_transfer_t t = s_tr("kasa-w00000000000000000004-1", "3");
    cobo_transfer_result_t res;
    cobo_tx_t found;
    char err[200] = "";
    s_faults("{\"transfer_5xx_once\":true}");
    CHECK_EQ_INT(cobo_transfer(c, &t, &res), COBO_TRANSFER_UNKNOWN);
    CHECK_EQ_INT(res.http_status, 503);
    CHECK_EQ_INT(cobo_find_transfer(c, t.request_id, &found, err, sizeof err), COBO_FIND_FOUND);
    t.request_id = "kasa-w00000000000000000004-2";
    s_faults("{\"fail_next\":1}");
    CHECK_EQ_INT(cobo_transfer(c, &t, &res), COBO_TRANSFER_UNKNOWN);
    CHECK_EQ_INT(cobo_find_transfer(c, t.request_id, &found, err, sizeof err), COBO_FIND_NOT_THERE);
    s_faults("{\"fail_next\":1}");
    CHECK_EQ_INT(cobo_find_transfer(c, t.request_id, &found, err, sizeof err), COBO_FIND_UNKNOWN);
    CHECK_EQ_INT(cobo_transfer(c, &t, &res), COBO_TRANSFER_CREATED);  /* safe: same request_id */
    cobo_client_destroy(&c);
}

static void test_signed_refusals_are_refused_and_rate_limits_say_so(void)
{
    char pub[65], err[200] = "";
    cobo_pubkey_from_seed(OTHER_SEED, pub);
    cobo_client_t *c = cobo_client_new(s_base, pub, OTHER_SEED, s_sim_pub, 3000, err, sizeof err);
    cobo_transfer_t t = s_tr("kasa-w00000000000000000005-1", "1");
    cobo_transfer_result_t res;
    CHECK_EQ_INT(cobo_transfer(c, &t, &res), COBO_TRANSFER_REFUSED);
    CHECK_EQ_INT(res.error_code, 2024);
    CHECK_EQ_INT(res.rate_limited, 0);
    cobo_client_destroy(&c);
    c = s_client(3000);
    s_faults("{\"rate_limit_next\":1}");
    CHECK_EQ_INT(cobo_transfer(c, &t, &res), COBO_TRANSFER_REFUSED);
    CHECK_EQ_INT(res.rate_limited, 1);
    CHECK_EQ_INT(cobo_transfer(c, &t, &res), COBO_TRANSFER_CREATED);
    s_faults("{\"bad_signature_once\":true}");  /* a 2xx whose signature fails: it may exist */
    t.request_id = "kasa-w00000000000000000005-2";
    CHECK_EQ_INT(cobo_transfer(c, &t, &res), COBO_TRANSFER_UNKNOWN);
    cobo_client_destroy(&c);
}

static void test_bad_transfer_arguments_send_nothing(void)
{
    cobo_client_t *c = s_client(3000);
    cobo_transfer_result_t res;
    cobo_transfer_t t = s_tr("kasa-w00000000000000000006-1", "1");
    t.address = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6u";  /* checksum */
    CHECK_EQ_INT(cobo_transfer(c, &t, &res), COBO_TRANSFER_INVALID);
    CHECK(strstr(res.message, "checksum") != NULL);
    t.address = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed";  /* an EVM address for a TRON token */
    CHECK_EQ_INT(cobo_transfer(c, &t, &res), COBO_TRANSFER_INVALID);
    t = s_tr("kasa-w00000000000000000006-1", "-1");
    CHECK_EQ_INT(cobo_transfer(c, &t, &res), COBO_TRANSFER_INVALID);
    t.amount = "0";
    CHECK_EQ_INT(cobo_transfer(c, &t, &res), COBO_TRANSFER_INVALID);
    t.amount = "1e3";
    CHECK_EQ_INT(cobo_transfer(c, &t, &res), COBO_TRANSFER_INVALID);
    t = s_tr("kasa/../x", "1");
    CHECK_EQ_INT(cobo_transfer(c, &t, &res), COBO_TRANSFER_INVALID);
    t = s_tr("kasa-w00000000000000000006-1", "1");
    t.fee_level = "Turbo";
    CHECK_EQ_INT(cobo_transfer(c, &t, &res), COBO_TRANSFER_INVALID);
    t = s_tr("kasa-w00000000000000000006-1", "1");
    t.token_id = "SOL_USDT";
    CHECK_EQ_INT(cobo_transfer(c, &t, &res), COBO_TRANSFER_INVALID);
    cobo_tx_t found;
    char err[200] = "";
    CHECK_EQ_INT(cobo_find_transfer(c, "kasa-w00000000000000000006-1", &found, err, sizeof err), COBO_FIND_NOT_THERE);
    cobo_client_destroy(&c);
}

/* Failed after the pending statuses, Rejected at authorization, a transfer held until a person moves
 * it, and a wallet too short: each is what a lookup says, and a failed transfer gives the coins back. */
static void test_failed_rejected_held_and_short_transfers(void)
{
    cobo_client_t *c = s_client(3000);
    cobo_transfer_result_t res;
    cobo_tx_t found;
    char err[200] = "", *out = NULL;
    const char *w = "5e5e5e5e-0000-4000-8000-00000000bbbb";
    CHECK_EQ_INT(s_control("POST", "/sim/balances", "{\"wallet_id\":\"5e5e5e5e-0000-4000-8000-00000000bbbb\","
                                                    "\"token_id\":\"TRON_USDT\",\"amount\":\"10\"}", &out), 200);
    free(out);
    cobo_transfer_t t = s_tr("kasa-w00000000000000000007-1", "4");
    t.wallet_id = w;
    s_faults("{\"transfer_final\":\"Failed\"}");
    CHECK_EQ_INT(cobo_transfer(c, &t, &res), COBO_TRANSFER_CREATED);
    CHECK_EQ_INT(cobo_find_transfer(c, t.request_id, &found, err, sizeof err), COBO_FIND_FOUND);
    CHECK_EQ_STR(found.status, "Failed");
    CHECK_EQ_STR(found.sub_status, "FailedOnChain");
    CHECK(s_balance_is(w, "TRON_USDT", "10"));
    s_faults("{\"transfer_final\":\"Rejected\"}");
    t.request_id = "kasa-w00000000000000000007-2";
    CHECK_EQ_INT(cobo_transfer(c, &t, &res), COBO_TRANSFER_CREATED);
    CHECK_EQ_INT(cobo_find_transfer(c, t.request_id, &found, err, sizeof err), COBO_FIND_FOUND);
    CHECK_EQ_STR(found.status, "Rejected");
    s_faults("{\"transfer_final\":\"\",\"transfer_stop_at\":\"PendingAuthorization\"}");
    t.request_id = "kasa-w00000000000000000007-3";
    CHECK_EQ_INT(cobo_transfer(c, &t, &res), COBO_TRANSFER_CREATED);
    CHECK_EQ_INT(cobo_find_transfer(c, t.request_id, &found, err, sizeof err), COBO_FIND_FOUND);
    CHECK_EQ_STR(found.status, "PendingAuthorization");
    CHECK_EQ_INT(cobo_status_is_final(cobo_status_parse(found.status)), 0);
    char path[160];
    snprintf(path, sizeof path, "/sim/transactions/%s", found.tx_id);
    CHECK_EQ_INT(s_control("POST", path, "{\"status\":\"Completed\"}", &out), 200);
    free(out);
    CHECK_EQ_INT(cobo_find_transfer(c, t.request_id, &found, err, sizeof err), COBO_FIND_FOUND);
    CHECK_EQ_STR(found.status, "Completed");
    s_faults("{\"transfer_stop_at\":\"\"}");
    t.request_id = "kasa-w00000000000000000007-4";
    t.amount = "7";  /* 6 left */
    CHECK_EQ_INT(cobo_transfer(c, &t, &res), COBO_TRANSFER_CREATED);
    CHECK_EQ_INT(cobo_find_transfer(c, t.request_id, &found, err, sizeof err), COBO_FIND_FOUND);
    CHECK_EQ_STR(found.status, "Failed");
    CHECK_EQ_STR(found.sub_status, "InsufficientBalance");
    CHECK(s_balance_is(w, "TRON_USDT", "6"));
    cobo_client_destroy(&c);
}

/* Cobo's own sweep: a Withdrawal with no request_id of kasa's, from the deposit address, and the
 * Deposit leg into the sweep-to address whose source is the deposit address. */
static void test_sweep_is_a_withdrawal_and_a_deposit_leg_from_the_deposit_address(void)
{
    CHECK_EQ_INT(s_wait_delivered(20000), 0);
    pthread_mutex_lock(&R.lock);
    R.n = 0;
    pthread_mutex_unlock(&R.lock);
    char *out = NULL;
    const char *from = "TXYZopYRdj2D9XRtbG411XZZ3kM5VkAeBf";
    CHECK_EQ_INT(s_control("POST", "/sim/sweep", "{\"address\":\"TXYZopYRdj2D9XRtbG411XZZ3kM5VkAeBf\","
                                                 "\"amount\":\"12\",\"to\":\"" TR_TO "\"}", &out), 201);
    free(out);
    CHECK_EQ_INT(s_wait_delivered(20000), 0);
    pthread_mutex_lock(&R.lock);
    int wd = 0, dep = 0;
    for (int i = 0; i < R.n; i++) {
        const cobo_tx_t *tx = &R.ev[i].tx;
        CHECK_EQ_STR(tx->source_address, from);
        CHECK_EQ_STR(tx->request_id, "");
        if (strcmp(tx->type, "Withdrawal") == 0) {
            wd++;
            CHECK_EQ_STR(tx->address, TR_TO);
        } else if (strcmp(tx->type, "Deposit") == 0) {
            dep++;
            CHECK_EQ_STR(tx->address, TR_TO);
            CHECK_EQ_STR(tx->source_type, "DepositFromAddress");
        }
    }
    CHECK_EQ_INT(wd, 8);
    CHECK_EQ_INT(dep, 3);
    pthread_mutex_unlock(&R.lock);
}

/* `kasa sim deposit ...` prints the new transaction id: through $KASA_BIN when it is there,
 * else by calling the command in-process with stdout captured. */
static void test_sim_deposit_command_prints_the_id(void)
{
    char line[256] = "", err[200] = "";
    const char *bin = getenv("KASA_BIN");
    if (bin && access(bin, X_OK) == 0) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "%s sim deposit --cobo %s --address TXYZopYRdj2D9XRtbG411XZZ3kM5VkAeBf "
                                  "--amount 250 --token TRON_USDT --chain TRON --confirmations 1", bin, s_sim_url);
        FILE *p = popen(cmd, "r");
        CHECK(p != NULL);
        if (!p)
            return;
        if (!fgets(line, sizeof line, p))
            line[0] = '\0';
        CHECK_EQ_INT(pclose(p), 0);
    } else {
        int pfd[2];
        CHECK_EQ_INT(pipe(pfd), 0);
        fflush(stdout);
        int saved = dup(1);
        dup2(pfd[1], 1);
        char *argv[] = { "deposit", "--cobo", s_sim_url, "--address", "TXYZopYRdj2D9XRtbG411XZZ3kM5VkAeBf",
                         "--amount", "250", "--confirmations", "1", NULL };
        int rc = sim_deposit_main(9, argv);
        fflush(stdout);
        dup2(saved, 1);
        close(saved);
        close(pfd[1]);
        ssize_t n = read(pfd[0], line, sizeof line - 1);
        line[n > 0 ? n : 0] = '\0';
        close(pfd[0]);
        CHECK_EQ_INT(rc, 0);
    }
    line[strcspn(line, "\n")] = '\0';
    CHECK_EQ_INT(strlen(line), 36);
    cobo_client_t *c = s_client(3000);
    cobo_tx_t tx;
    CHECK_EQ_INT(cobo_get_transaction(c, line, &tx, err, sizeof err), COBO_OK);
    CHECK_EQ_STR(tx.amount, "250");
    cobo_client_destroy(&c);
}

static void test_simulator_stops_cleanly_on_sigterm(void)
{
    CHECK_EQ_INT(kill(s_sim_pid, SIGTERM), 0);
    int status = -1;
    for (int i = 0; i < 100 && waitpid(s_sim_pid, &status, WNOHANG) == 0; i++)
        usleep(50 * 1000);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (status == -1) {
        kill(s_sim_pid, SIGKILL);
        waitpid(s_sim_pid, &status, 0);
    }
}

int main(void)
{
    RUN(test_pubkey_from_seed_matches_rfc8032);
    RUN(test_request_signature_matches_cobo_sdk);
    RUN(test_signature_matches_openssl);
    RUN(test_verify_accepts_only_the_signed_message);
    RUN(test_request_verify_round_trip);
    RUN(test_hex_parsing_is_strict);

    int hook_port = 0, hook_fd = s_listen_any(&hook_port);
    if (hook_fd < 0 || s_sim_start(hook_port) != 0) {
        printf("FAIL simulator_start\n");
        check_failed_++;
        return check_done();
    }
    struct MHD_Daemon *hook = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL, NULL, s_receiver, NULL,
        MHD_OPTION_LISTEN_SOCKET, hook_fd, MHD_OPTION_END);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    RUN(test_client_new_refuses_bad_configuration);
    RUN(test_client_gets_a_transaction);
    RUN(test_client_creates_and_lists_addresses);
    RUN(test_client_lists_balances_by_wallet_and_by_address_every_page);
    RUN(test_wrong_api_key_gets_2024);
    RUN(test_broken_response_signature_is_rejected);
    RUN(test_underscore_signature_headers_are_accepted);
    RUN(test_injected_503_is_a_5xx_with_2026);
    RUN(test_timed_out_creation_is_found_by_listing);
    RUN(test_unreachable_server_is_transport);
    RUN(test_deposit_lifecycle_arrives_as_signed_webhooks);
    RUN(test_stale_nonce_is_refused);
    RUN(test_reordered_duplicates_all_arrive);
    RUN(test_status_change_is_served_and_notified);
    RUN(test_status_names_and_finality);
    RUN(test_transfer_is_created_goes_through_its_statuses_and_takes_the_balance);
    RUN(test_reused_request_id_is_a_duplicate_with_either_code);
    RUN(test_transfer_with_more_decimals_than_the_token_is_never_sent);
    RUN(test_transfer_timed_out_after_creating_is_unknown_then_found);
    RUN(test_5xx_after_creating_is_unknown_and_503_before_is_not_there);
    RUN(test_signed_refusals_are_refused_and_rate_limits_say_so);
    RUN(test_bad_transfer_arguments_send_nothing);
    RUN(test_failed_rejected_held_and_short_transfers);
    RUN(test_sweep_is_a_withdrawal_and_a_deposit_leg_from_the_deposit_address);

    RUN(test_sim_deposit_command_prints_the_id);
    RUN(test_simulator_stops_cleanly_on_sigterm);
    if (hook)
        MHD_stop_daemon(hook);
    curl_global_cleanup();
    return check_done();
}
