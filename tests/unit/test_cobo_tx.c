/* test_cobo_tx.c — webhook and Transaction parsing: a realistic deposit body, and a corpus of
 * malformed ones that must each be refused with a clear reason. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/cobo_tx.h"
#include "schema/json.h"
#include "tests/check.h"
#include "tests/cobo_body.h"

/* A deposit webhook as Cobo sends it (every field, nulls where absent). */
static const char *s_body = COBO_DEPOSIT_BODY;

/* Returns s_body with the first occurrence of from replaced by to (caller frees). */
static char *s_edit(const char *from, const char *to)
{
    return cobo_body_edit(s_body, from, to);
}

/* Parses the edited body; 0/-1 as cobo_event_parse, err filled. */
static int s_parse_edit(const char *from, const char *to, char *err, size_t errlen)
{
    char *b = s_edit(from, to);
    if (!b) {
        snprintf(err, errlen, "edit not found: %s", from);
        return 99;
    }
    cobo_event_t ev;
    int rc = cobo_event_parse(b, strlen(b), &ev, err, errlen);
    free(b);
    return rc;
}

static void test_realistic_deposit_webhook_parses(void)
{
    cobo_event_t ev;
    char err[160] = "";
    CHECK_EQ_INT(cobo_event_parse(s_body, strlen(s_body), &ev, err, sizeof err), 0);
    CHECK_EQ_STR(ev.event_id, "c3d9a2f4-1b6e-4f0a-9d2c-7e8f5a6b4c3d");
    CHECK_EQ_STR(ev.type, "wallets.transaction.succeeded");
    CHECK_EQ_INT(ev.is_transaction, 1);
    CHECK_EQ_STR(ev.tx.tx_id, "0f6b5a4e-8c1d-4b7e-9a3f-2d5c7e9b1a20");
    CHECK_EQ_STR(ev.tx.type, "Deposit");
    CHECK_EQ_STR(ev.tx.status, "Completed");
    CHECK_EQ_STR(ev.tx.sub_status, "");
    CHECK_EQ_STR(ev.tx.wallet_id, "6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b");
    CHECK_EQ_STR(ev.tx.chain_id, "TRON");
    CHECK_EQ_STR(ev.tx.token_id, "TRON_USDT");
    CHECK_EQ_STR(ev.tx.address, "TXYZopYRdj2D9XRtbG411XZZ3kM5VkAeBf");
    CHECK_EQ_STR(ev.tx.amount, "5970.04");
    CHECK_EQ_STR(ev.tx.tx_hash, "9a4c1e5f7b2d8a6c3e0f1b9d7a5c3e1f0b2d4a6c8e0f1a3b5c7d9e1f3a5b7c9d");
    CHECK_EQ_INT(ev.tx.confirmations, 20);
    CHECK_EQ_INT(ev.tx.threshold, 20);
    CHECK_EQ_INT(ev.tx.updated_ms, 1764142800000LL);
}

static void test_null_optionals_become_defaults(void)
{
    char err[160] = "";
    char *b = s_edit("\"confirmed_num\":20,\"confirming_threshold\":20",
                     "\"confirmed_num\":null,\"confirming_threshold\":null");
    char *b2 = b ? strstr(b, "\"transaction_hash\":\"") : NULL;
    CHECK(b2 != NULL);
    cobo_event_t ev;
    CHECK_EQ_INT(cobo_event_parse(b, strlen(b), &ev, err, sizeof err), 0);
    CHECK_EQ_INT(ev.tx.confirmations, -1);
    CHECK_EQ_INT(ev.tx.threshold, -1);
    free(b);
    CHECK_EQ_INT(s_parse_edit("\"updated_timestamp\":1764142800000", "\"updated_timestamp\":null", err, sizeof err), 0);
}

static void test_non_transaction_event_is_not_a_transaction(void)
{
    const char *b = "{\"event_id\":\"e1\",\"type\":\"wallets.token.updated\",\"data\":{\"data_type\":\"TokenListing\",\"x\":1}}";
    cobo_event_t ev;
    char err[160] = "";
    CHECK_EQ_INT(cobo_event_parse(b, strlen(b), &ev, err, sizeof err), 0);
    CHECK_EQ_INT(ev.is_transaction, 0);
    CHECK_EQ_STR(ev.type, "wallets.token.updated");
}

static void test_withdrawal_shape_reads_account_output(void)
{
    const char *b = "{\"event_id\":\"e2\",\"type\":\"wallets.transaction.updated\",\"data\":{\"data_type\":\"Transaction\","
                    "\"transaction_id\":\"t-2\",\"type\":\"Withdrawal\",\"status\":\"Completed\",\"chain_id\":\"TRON\","
                    "\"token_id\":\"TRON_USDT\",\"destination\":{\"destination_type\":\"Address\","
                    "\"account_output\":{\"address\":\"TAbc\",\"amount\":\"12.5\",\"memo\":null}}}}";
    cobo_event_t ev;
    char err[160] = "";
    CHECK_EQ_INT(cobo_event_parse(b, strlen(b), &ev, err, sizeof err), 0);
    CHECK_EQ_STR(ev.tx.address, "TAbc");
    CHECK_EQ_STR(ev.tx.amount, "12.5");
    CHECK_EQ_STR(ev.tx.type, "Withdrawal");
}

static void test_request_id_and_sender_are_read(void)
{
    cobo_event_t ev;
    char err[160] = "";
    CHECK_EQ_INT(cobo_event_parse(s_body, strlen(s_body), &ev, err, sizeof err), 0);
    CHECK_EQ_STR(ev.tx.request_id, "");
    CHECK_EQ_STR(ev.tx.source_type, "DepositFromAddress");
    CHECK_EQ_STR(ev.tx.source_address, "TJRyWwFs9wTFGZg3JbrVriFbNfCug5tDeC");   /* source.addresses[0] */
    const char *b = "{\"event_id\":\"e3\",\"type\":\"wallets.transaction.updated\",\"data\":{\"data_type\":\"Transaction\","
                    "\"transaction_id\":\"t-3\",\"request_id\":\"kasa-w0123456789abcdef0123-1\",\"type\":\"Withdrawal\","
                    "\"status\":\"PendingSignature\",\"chain_id\":\"TRON\",\"token_id\":\"TRON_USDT\",\"source\":"
                    "{\"source_type\":\"Org-Controlled\",\"wallet_id\":\"w\",\"address\":\"TFrom\"},\"destination\":"
                    "{\"destination_type\":\"Address\",\"account_output\":{\"address\":\"TAbc\",\"amount\":\"1\"}}}}";
    CHECK_EQ_INT(cobo_event_parse(b, strlen(b), &ev, err, sizeof err), 0);
    CHECK_EQ_STR(ev.tx.request_id, "kasa-w0123456789abcdef0123-1");
    CHECK_EQ_STR(ev.tx.source_type, "Org-Controlled");
    CHECK_EQ_STR(ev.tx.source_address, "TFrom");
    CHECK_EQ_INT(cobo_status_parse(ev.tx.status), COBO_STATUS_PENDING_SIGNATURE);
    /* a sender that is not a string is refused like any other field */
    CHECK_EQ_INT(s_parse_edit("\"addresses\":[\"TJRyWwFs9wTFGZg3JbrVriFbNfCug5tDeC\"]", "\"addresses\":[5]", err,
                              sizeof err), -1);
    CHECK(strstr(err, "source.addresses.0") != NULL);
}

/* own: the one address kasa gave out in these cases, and the broker's hot wallet */
static int s_own(void *arg, const char *address)
{
    return strcmp(address, (const char *) arg) == 0 ? COBO_OWN_DEPOSIT
           : strcmp(address, "TBrokerHot") == 0     ? COBO_OWN_BROKER
                                                    : 0;
}

static cobo_tx_t s_kind_tx(const char *type, const char *request_id, const char *source_type, const char *from)
{
    cobo_tx_t t;
    memset(&t, 0, sizeof t);
    snprintf(t.type, sizeof t.type, "%s", type);
    snprintf(t.request_id, sizeof t.request_id, "%s", request_id);
    snprintf(t.source_type, sizeof t.source_type, "%s", source_type);
    snprintf(t.source_address, sizeof t.source_address, "%s", from);
    return t;
}

static void test_kind_tells_deposits_withdrawals_and_sweeps_apart(void)
{
    const char *mine = "TMineDeposit";
    struct {
        cobo_tx_t tx;
        cobo_kind_t want;
    } cases[] = {
        { s_kind_tx("Deposit", "", "DepositFromAddress", "TOutside"), COBO_KIND_DEPOSIT },
        { s_kind_tx("Deposit", "", "DepositFromAddress", ""), COBO_KIND_DEPOSIT },
        { s_kind_tx("Deposit", "", "DepositFromAddress", "TMineDeposit"), COBO_KIND_SWEEP },
        { s_kind_tx("Deposit", "", "DepositFromWallet", "TOutside"), COBO_KIND_SWEEP },
        { s_kind_tx("Withdrawal", "kasa-w0123456789abcdef0123-1", "Asset", ""), COBO_KIND_WITHDRAWAL },
        { s_kind_tx("Withdrawal", "", "Org-Controlled", "TMineDeposit"), COBO_KIND_SWEEP },
        { s_kind_tx("Withdrawal", "portal-1", "Asset", ""), COBO_KIND_SWEEP },
        { s_kind_tx("Withdrawal", "kasa", "Asset", ""), COBO_KIND_SWEEP },
        { s_kind_tx("ContractCall", "kasa-w0123456789abcdef0123-1", "", ""), COBO_KIND_OTHER },
        { s_kind_tx("", "", "", ""), COBO_KIND_OTHER },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK_EQ_INT(cobo_tx_kind(&cases[i].tx, s_own, (void *) mine), cases[i].want);
    /* without knowing kasa's addresses, a deposit from one cannot be told: still a deposit */
    cobo_tx_t t = s_kind_tx("Deposit", "", "DepositFromAddress", "TMineDeposit");
    CHECK_EQ_INT(cobo_tx_kind(&t, NULL, NULL), COBO_KIND_DEPOSIT);
    CHECK_EQ_STR(cobo_kind_name(COBO_KIND_SWEEP), "sweep");
}

/* Fee Station's gas (cobo_category AutoFueling) and coins from the broker's own addresses are the
 * broker's own, never a deposit; an auto-sweep's deposit leg is a sweep; the marks are parsed. */
static void test_kind_tells_the_brokers_own_transfers_apart(void)
{
    const char *mine = "TMineDeposit";
    cobo_tx_t t = s_kind_tx("Deposit", "", "DepositFromAddress", "TFeeStation");
    snprintf(t.cobo_category, sizeof t.cobo_category, "AutoFueling");
    CHECK_EQ_INT(cobo_tx_kind(&t, NULL, NULL), COBO_KIND_OWN);
    snprintf(t.cobo_category, sizeof t.cobo_category, "SafeTxMessage,AutoFuelingRefund");
    CHECK_EQ_INT(cobo_tx_kind(&t, NULL, NULL), COBO_KIND_OWN);
    snprintf(t.cobo_category, sizeof t.cobo_category, "AutoSweep");
    CHECK_EQ_INT(cobo_tx_kind(&t, NULL, NULL), COBO_KIND_SWEEP);
    snprintf(t.cobo_category, sizeof t.cobo_category, "AutoFuelingX");   /* not a name Cobo defines */
    CHECK_EQ_INT(cobo_tx_kind(&t, NULL, NULL), COBO_KIND_DEPOSIT);
    t = s_kind_tx("Deposit", "", "DepositFromAddress", "TBrokerHot");
    CHECK_EQ_INT(cobo_tx_kind(&t, s_own, (void *) mine), COBO_KIND_OWN);
    CHECK_EQ_INT(cobo_tx_kind(&t, NULL, NULL), COBO_KIND_DEPOSIT);
    t = s_kind_tx("Withdrawal", "", "Org-Controlled", "TBrokerHot");   /* leaving: not into an address of ours */
    CHECK_EQ_INT(cobo_tx_kind(&t, s_own, (void *) mine), COBO_KIND_SWEEP);
    CHECK_EQ_STR(cobo_kind_name(COBO_KIND_OWN), "own");
    /* parsed from the webhook: cobo_category's entries, comma-joined */
    char err[160] = "";
    char *body = s_edit("\"is_loop\"", "\"cobo_category\":[\"AutoFueling\",\"X\"],\"is_loop\"");
    cobo_event_t ev;
    CHECK(body && cobo_event_parse(body, strlen(body), &ev, err, sizeof err) == 0);
    free(body);
    CHECK_EQ_STR(ev.tx.cobo_category, "AutoFueling,X");
    CHECK_EQ_INT(cobo_tx_kind(&ev.tx, NULL, NULL), COBO_KIND_OWN);
}

static void test_missing_required_fields_are_named(void)
{
    static const struct { const char *from, *to, *reason; } cases[] = {
        { "\"transaction_id\":\"0f6b5a4e-8c1d-4b7e-9a3f-2d5c7e9b1a20\"", "\"transaction_id\":null", "missing field data.transaction_id" },
        { "\"transaction_id\":\"0f6b5a4e-8c1d-4b7e-9a3f-2d5c7e9b1a20\"", "\"transaction_idx\":\"a\"", "missing field data.transaction_id" },
        { "\"transaction_id\":\"0f6b5a4e-8c1d-4b7e-9a3f-2d5c7e9b1a20\"", "\"transaction_id\":\"\"", "missing field data.transaction_id" },
        { "\"type\":\"Deposit\"", "\"type\":null", "missing field data.type" },
        { "\"status\":\"Completed\"", "\"sttus\":\"Completed\"", "missing field data.status" },
        { "\"token_id\":\"TRON_USDT\"", "\"token_id\":null", "missing field data.token_id" },
        { "\"chain_id\":\"TRON\"", "\"chain\":\"TRON\"", "missing field data.chain_id" },
        { "\"address\":\"TXYZopYRdj2D9XRtbG411XZZ3kM5VkAeBf\"", "\"address\":null", "missing field data.destination.address" },
        { "\"amount\":\"5970.04\"", "\"amount\":null", "missing field data.destination.amount" },
        { "\"event_id\":\"c3d9a2f4-1b6e-4f0a-9d2c-7e8f5a6b4c3d\"", "\"event_id\":null", "missing field event_id" },
        { "\"type\":\"wallets.transaction.succeeded\"", "\"kind\":\"x\"", "missing field type" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[160] = "";
        CHECK_EQ_INT(s_parse_edit(cases[i].from, cases[i].to, err, sizeof err), -1);
        CHECK_EQ_STR(err, cases[i].reason);
    }
}

static void test_wrong_types_are_refused(void)
{
    static const struct { const char *from, *to, *reason; } cases[] = {
        { "\"status\":\"Completed\"", "\"status\":3", "field data.status: not a string" },
        { "\"amount\":\"5970.04\"", "\"amount\":5970.04", "field data.destination.amount: not a string" },
        { "\"confirmed_num\":20", "\"confirmed_num\":\"twenty\"", "field data.confirmed_num: not an integer" },
        { "\"confirmed_num\":20", "\"confirmed_num\":-1", "field data.confirmed_num: out of range" },
        { "\"confirmed_num\":20", "\"confirmed_num\":2.5", "field data.confirmed_num: not an integer" },
        { "\"sub_status\":null", "\"sub_status\":{}", "field data.sub_status: not a string" },
        { "\"transaction_hash\":\"9a4c", "\"transaction_hash\":[\"9a4c\"],\"x\":\"", "field data.transaction_hash: not a string" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[160] = "";
        CHECK_EQ_INT(s_parse_edit(cases[i].from, cases[i].to, err, sizeof err), -1);
        CHECK_EQ_STR(err, cases[i].reason);
    }
    cobo_event_t ev;
    char err[160] = "";
    const char *b = "{\"event_id\":\"e\",\"type\":\"t\",\"data\":\"Transaction\"}";
    CHECK_EQ_INT(cobo_event_parse(b, strlen(b), &ev, err, sizeof err), -1);
    CHECK_EQ_STR(err, "field data: not an object");
    b = "{\"event_id\":\"e\",\"type\":\"t\"}";
    CHECK_EQ_INT(cobo_event_parse(b, strlen(b), &ev, err, sizeof err), -1);
    CHECK_EQ_STR(err, "missing field data");
}

static void test_bad_amounts_are_refused(void)
{
    static const char *amounts[] = { "\"amount\":\"-5\"", "\"amount\":\"1e5\"", "\"amount\":\"1.0000000000000000001\"",
                                     "\"amount\":\"abc\"", "\"amount\":\" 5\"", "\"amount\":\".5\"",
                                     "\"amount\":\"5.\"", "\"amount\":\"NaN\"", "\"amount\":\"99999999999999999999\"" };
    for (size_t i = 0; i < sizeof amounts / sizeof amounts[0]; i++) {
        char err[160] = "";
        CHECK_EQ_INT(s_parse_edit("\"amount\":\"5970.04\"", amounts[i], err, sizeof err), -1);
        CHECK(strncmp(err, "amount: ", 8) == 0);
    }
    char err[160] = "";
    CHECK_EQ_INT(s_parse_edit("\"amount\":\"5970.04\"", "\"amount\":\"0.000000000000000001\"", err, sizeof err), 0);
}

static void test_oversized_and_control_strings_are_refused(void)
{
    char big[300], to[400], err[200] = "";
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    snprintf(to, sizeof to, "\"transaction_id\":\"%s\"", big);
    CHECK_EQ_INT(s_parse_edit("\"transaction_id\":\"0f6b5a4e-8c1d-4b7e-9a3f-2d5c7e9b1a20\"", to, err, sizeof err), -1);
    CHECK_EQ_STR(err, "field data.transaction_id: longer than 79 bytes");
    /* exactly at the limit fits */
    big[79] = '\0';
    snprintf(to, sizeof to, "\"transaction_id\":\"%s\"", big);
    CHECK_EQ_INT(s_parse_edit("\"transaction_id\":\"0f6b5a4e-8c1d-4b7e-9a3f-2d5c7e9b1a20\"", to, err, sizeof err), 0);
    big[79] = 'a';  /* one over: 80 bytes */
    big[80] = '\0';
    snprintf(to, sizeof to, "\"transaction_id\":\"%s\"", big);
    CHECK_EQ_INT(s_parse_edit("\"transaction_id\":\"0f6b5a4e-8c1d-4b7e-9a3f-2d5c7e9b1a20\"", to, err, sizeof err), -1);
    CHECK_EQ_INT(s_parse_edit("\"status\":\"Completed\"", "\"status\":\"Completed-and-a-very-long-status-name\"", err, sizeof err), -1);
    CHECK_EQ_INT(s_parse_edit("\"address\":\"TXYZopYRdj2D9XRtbG411XZZ3kM5VkAeBf\"", "\"address\":\"TX\\nYZ\"", err, sizeof err), -1);
    CHECK_EQ_STR(err, "field data.destination.address: control character");
    /* a huge body with a huge irrelevant field still parses; a huge required one does not */
    size_t n = 200000;
    char *huge = malloc(n + 64);
    memset(huge, 'x', n);
    huge[n] = '\0';
    char *tobig = malloc(n + 64);
    snprintf(tobig, n + 64, "\"description\":\"%s\"", huge);
    CHECK_EQ_INT(s_parse_edit("\"description\":null", tobig, err, sizeof err), 0);
    snprintf(tobig, n + 64, "\"amount\":\"%s\"", huge);
    CHECK_EQ_INT(s_parse_edit("\"amount\":\"5970.04\"", tobig, err, sizeof err), -1);
    CHECK(strstr(err, "longer than") != NULL);
    free(huge);
    free(tobig);
}

static void test_malformed_json_is_refused_without_echo(void)
{
    static const char *bodies[] = { "", "   ", "null", "[1,2]", "{\"event_id\":", "{\"a\":1}x", "{'a':1}",
                                    "\"just a string\"", "{\"event_id\":\"e\",\"type\":\"t\",\"data\":{\"data_type\":\"Transaction\"}}" };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        cobo_event_t ev;
        char err[160] = "";
        CHECK_EQ_INT(cobo_event_parse(bodies[i], strlen(bodies[i]), &ev, err, sizeof err), -1);
        CHECK(err[0] != '\0');
        if (strlen(bodies[i]) > 8)
            CHECK(strstr(err, bodies[i]) == NULL);
    }
    cobo_event_t ev;
    char err[160] = "";
    const char nul[] = "{\"event_id\":\"e\0\"}";
    CHECK_EQ_INT(cobo_event_parse(nul, sizeof nul - 1, &ev, err, sizeof err), -1);
}

static void test_tx_from_bson_at_root(void)
{
    bson_t doc;
    char err[160] = "";
    const char *data = strstr(s_body, "\"data\":{") + 7;
    size_t len = strlen(data) - 1; /* drop the envelope's closing brace */
    CHECK_EQ_INT(json_parse(data, len, &doc, err, sizeof err), 0);
    cobo_tx_t tx;
    CHECK_EQ_INT(cobo_tx_from_bson(&doc, "", &tx, err, sizeof err), 0);
    CHECK_EQ_STR(tx.tx_id, "0f6b5a4e-8c1d-4b7e-9a3f-2d5c7e9b1a20");
    CHECK_EQ_STR(tx.amount, "5970.04");
    bson_destroy(&doc);
}

int main(void)
{
    RUN(test_realistic_deposit_webhook_parses);
    RUN(test_null_optionals_become_defaults);
    RUN(test_non_transaction_event_is_not_a_transaction);
    RUN(test_withdrawal_shape_reads_account_output);
    RUN(test_request_id_and_sender_are_read);
    RUN(test_kind_tells_deposits_withdrawals_and_sweeps_apart);
    RUN(test_kind_tells_the_brokers_own_transfers_apart);
    RUN(test_missing_required_fields_are_named);
    RUN(test_wrong_types_are_refused);
    RUN(test_bad_amounts_are_refused);
    RUN(test_oversized_and_control_strings_are_refused);
    RUN(test_malformed_json_is_refused_without_echo);
    RUN(test_tx_from_bson_at_root);
    return check_done();
}
