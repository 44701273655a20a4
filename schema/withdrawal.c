/* withdrawal.c — the withdrawal state machine: one table, and everything derived from it; plus the
 * withdrawal's pure rules (references, request ids, the quote, the approvals it needs).
 *
 * s_table[state][event] is the whole machine. A cell left out is ILLEGAL: the step is refused and
 * the withdrawal does not move. Nothing else in kasa decides what a withdrawal transition is.
 *
 * Guarantees the table gives (tests/unit/test_withdrawal.c proves them over random event sequences):
 *  - Never backwards: COMPLETED, REJECTED and REFUNDED are never left; a late or repeated Cobo status
 *    (TRANSFER_SENT after SENT, TRANSFER_DONE after COMPLETED) is SAME.
 *  - One debit: DEBIT is asked only on NONE --REQUEST--> REQUESTED, which happens once.
 *  - One transfer per request_id: TRANSFER is asked on entering APPROVED, from DEBITED (the first) or
 *    from HELD by a person's RETRANSFER; HELD is entered only when Cobo said the transfer failed or
 *    refused to create it (final), so a second transfer follows only a final failure of the first.
 *  - One refund, and never after a completed transfer: REFUND is asked only on entering REFUNDING,
 *    from DEBITED (a reject before any transfer) or HELD (after Cobo's final failure); COMPLETED never
 *    leads to REFUNDING, and REFUNDING/REFUNDED never lead to COMPLETED (a Completed that arrives
 *    then is SAME with an ALERT: a person must look at money that left twice).
 *  - A withdrawal is never both completed and refunded.
 */
#include "schema/withdrawal.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "schema/err.h"

typedef struct {
    unsigned char defined;
    unsigned char outcome;
    unsigned char to;
    unsigned char effects;
} s_cell_t;

#define S_MOVE(to_, fx) { 1, WITHDRAWAL_STEP_MOVE, WITHDRAWAL_##to_, (fx) }
#define S_SAME(st, fx)  { 1, WITHDRAWAL_STEP_SAME, WITHDRAWAL_##st, (fx) }
#define S_AT(st, ev)    [WITHDRAWAL_##st][WITHDRAWAL_EV_##ev]

#define DEBIT    WITHDRAWAL_EFFECT_DEBIT
#define TRANSFER WITHDRAWAL_EFFECT_TRANSFER
#define REFUND   WITHDRAWAL_EFFECT_REFUND
#define ALERT    WITHDRAWAL_EFFECT_ALERT
#define NOFX     WITHDRAWAL_EFFECT_NONE

static const s_cell_t s_table[WITHDRAWAL_STATE_COUNT][WITHDRAWAL_EVENT_COUNT] = {
    /* ---- the investor ---- */
    /* A checked request: debit at once, so the money cannot be traded away meanwhile. */
    S_AT(NONE, REQUEST)                = S_MOVE(REQUESTED, DEBIT),

    /* ---- the withdrawer: the MT5 debit ---- */
    /* The debit deal exists (sent now, or found by its reference): the only way into DEBITED. */
    S_AT(REQUESTED, DEBIT_OK)          = S_MOVE(DEBITED, NOFX),
    /* MT5 refused (no money, over free margin) and a search shows no deal: nothing moved. */
    S_AT(REQUESTED, DEBIT_REFUSED)     = S_MOVE(REJECTED, NOFX),

    /* ---- people ---- */
    /* The last approval its amount needs (or none is needed): pay it out. */
    S_AT(DEBITED, APPROVE)             = S_MOVE(APPROVED, TRANSFER),
    /* Rejected before any transfer was asked for: give the debit back. */
    S_AT(DEBITED, REJECT)              = S_MOVE(REFUNDING, REFUND),
    /* Cobo's transfer is final (failed, or never created): a person gives the money back ... */
    S_AT(HELD, REFUND)                 = S_MOVE(REFUNDING, REFUND),
    /* ... or pays it out again under a new request_id. */
    S_AT(HELD, RETRANSFER)             = S_MOVE(APPROVED, TRANSFER),

    /* ---- the withdrawer and Cobo: the transfer ---- */
    /* Cobo holds the transfer (created now, or found by request_id after a timeout). */
    S_AT(APPROVED, TRANSFER_SENT)      = S_MOVE(SENT, NOFX),
    /* Status updates that change nothing (Pending, Processing, repeats). */
    S_AT(SENT, TRANSFER_SENT)          = S_SAME(SENT, NOFX),
    S_AT(COMPLETED, TRANSFER_SENT)     = S_SAME(COMPLETED, NOFX),
    S_AT(HELD, TRANSFER_SENT)          = S_SAME(HELD, NOFX),
    S_AT(REFUNDING, TRANSFER_SENT)     = S_SAME(REFUNDING, NOFX),
    S_AT(REFUNDED, TRANSFER_SENT)      = S_SAME(REFUNDED, NOFX),
    /* Completed: the coins left. A lookup may find it Completed before any Pending was seen. */
    S_AT(APPROVED, TRANSFER_DONE)      = S_MOVE(COMPLETED, NOFX),
    S_AT(SENT, TRANSFER_DONE)          = S_MOVE(COMPLETED, NOFX),
    S_AT(COMPLETED, TRANSFER_DONE)     = S_SAME(COMPLETED, NOFX),
    /* Held but Cobo says Completed after all: the coins left, so it is COMPLETED (never refunded
     * now), and a person is told. */
    S_AT(HELD, TRANSFER_DONE)          = S_MOVE(COMPLETED, ALERT),
    /* Already refunding or refunded and the coins left too: money went out twice. A person. */
    S_AT(REFUNDING, TRANSFER_DONE)     = S_SAME(REFUNDING, ALERT),
    S_AT(REFUNDED, TRANSFER_DONE)      = S_SAME(REFUNDED, ALERT),
    /* Failed or Rejected at Cobo, final: a person chooses refund or a new transfer. */
    S_AT(APPROVED, TRANSFER_FAILED)    = S_MOVE(HELD, ALERT),
    S_AT(SENT, TRANSFER_FAILED)        = S_MOVE(HELD, ALERT),
    /* A failure after Completed contradicts Cobo's final status: a person must look. */
    S_AT(COMPLETED, TRANSFER_FAILED)   = S_SAME(COMPLETED, ALERT),
    S_AT(HELD, TRANSFER_FAILED)        = S_SAME(HELD, NOFX),
    S_AT(REFUNDING, TRANSFER_FAILED)   = S_SAME(REFUNDING, NOFX),
    S_AT(REFUNDED, TRANSFER_FAILED)    = S_SAME(REFUNDED, NOFX),
    /* Cobo refused to create it (a 4xx that is not a reused request_id): nothing was created. */
    S_AT(APPROVED, TRANSFER_REFUSED)   = S_MOVE(HELD, ALERT),

    /* ---- the withdrawer: the MT5 refund ---- */
    S_AT(REFUNDING, REFUND_OK)         = S_MOVE(REFUNDED, NOFX),
};

#undef DEBIT
#undef TRANSFER
#undef REFUND
#undef ALERT
#undef NOFX

#define S_NAME_(name) #name,
static const char *const s_state_names[WITHDRAWAL_STATE_COUNT] = { WITHDRAWAL_STATES(S_NAME_) };
static const char *const s_event_names[WITHDRAWAL_EVENT_COUNT] = { WITHDRAWAL_EVENTS(S_NAME_) };
#undef S_NAME_

withdrawal_step_t withdrawal_step(withdrawal_state_t from, withdrawal_event_t ev)
{
    withdrawal_step_t step = { WITHDRAWAL_STEP_ILLEGAL, from, WITHDRAWAL_EFFECT_NONE };
    if ((unsigned) from >= WITHDRAWAL_STATE_COUNT || (unsigned) ev >= WITHDRAWAL_EVENT_COUNT)
        return step;
    const s_cell_t *c = &s_table[from][ev];
    if (!c->defined)
        return step;
    step.outcome = (withdrawal_outcome_t) c->outcome;
    step.to = (withdrawal_state_t) c->to;
    step.effects = c->effects;
    return step;
}

const char *withdrawal_state_name(withdrawal_state_t state)
{
    return (unsigned) state < WITHDRAWAL_STATE_COUNT ? s_state_names[state] : "?";
}

const char *withdrawal_event_name(withdrawal_event_t ev)
{
    return (unsigned) ev < WITHDRAWAL_EVENT_COUNT ? s_event_names[ev] : "?";
}

static int s_lookup(const char *const *names, int count, const char *name)
{
    for (int i = 0; name && i < count; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

int withdrawal_state_from_name(const char *name)
{
    return s_lookup(s_state_names, WITHDRAWAL_STATE_COUNT, name);
}

int withdrawal_event_from_name(const char *name)
{
    return s_lookup(s_event_names, WITHDRAWAL_EVENT_COUNT, name);
}

int withdrawal_state_is_final(withdrawal_state_t state)
{
    if ((unsigned) state >= WITHDRAWAL_STATE_COUNT)
        return 1;
    for (int ev = 0; ev < WITHDRAWAL_EVENT_COUNT; ev++) {
        const s_cell_t *c = &s_table[state][ev];
        if (c->defined && c->outcome == WITHDRAWAL_STEP_MOVE && c->to != (unsigned char) state)
            return 0;
    }
    return 1;
}

/* ---- identity and references ---- */

int withdrawal_id_valid(const char *id)
{
    if (!id || id[0] != 'w' || strlen(id) != WITHDRAWAL_ID_HEX + 1)
        return 0;
    for (int i = 1; i <= WITHDRAWAL_ID_HEX; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return 0;
    return 1;
}

void withdrawal_id_make(const unsigned char rnd[10], char out[WITHDRAWAL_ID_HEX + 2])
{
    static const char hex[] = "0123456789abcdef";
    out[0] = 'w';
    for (int i = 0; i < WITHDRAWAL_ID_HEX / 2; i++) {
        out[1 + 2 * i] = hex[rnd[i] >> 4];
        out[2 + 2 * i] = hex[rnd[i] & 15];
    }
    out[WITHDRAWAL_ID_HEX + 1] = '\0';
}

/* "kasa w<kind> <mark><20 hex of id>". */
static void s_ref(const char *id, char kind, char mark, char out[32])
{
    snprintf(out, 32, "kasa w%c %c%.20s", kind, mark, id && id[0] == 'w' ? id + 1 : "");
}

void withdrawal_debit_ref(const char *id, char out[32]) { s_ref(id, 'd', 'd', out); }
void withdrawal_refund_ref(const char *id, char out[32]) { s_ref(id, 'r', 'e', out); }

int withdrawal_ref_kind(const char *comment)
{
    const char *p = comment ? strstr(comment, "kasa w") : NULL;
    if (!p || (p[6] != 'd' && p[6] != 'r') || p[7] != ' ')
        return 0;
    return p[6];
}

void withdrawal_request_id(const char *id, uint32_t n, char out[48])
{
    snprintf(out, 48, "kasa-%.21s-%u", id ? id : "", (unsigned) (n ? n : 1));
}

/* ---- the quote ---- */

static money_atto_t s_pow10(int n)
{
    money_atto_t p = 1;
    while (n-- > 0)
        p *= 10;
    return p;
}

/* floor(a * 10^18 / b) by long division (a, b <= ~10^30: no step overflows). b > 0. */
static money_atto_t s_div_atto(money_atto_t a, money_atto_t b)
{
    money_atto_t q = a / b, r = a % b;
    for (int i = 0; i < 18; i++) {
        r *= 10;
        q = q * 10 + r / b;
        r %= b;
    }
    return q;
}

/* token × rate (both atto-units), exact, rounded up to an atto-unit of account money. No overflow
 * for anything a quote computes: token × rate never exceeds the amount it came from. */
static money_atto_t s_worth_up(money_atto_t token, money_atto_t rate)
{
    const money_atto_t one = s_pow10(18);
    money_atto_t tw = token / one, tf = token % one, rw = rate / one, rf = rate % one;
    money_atto_t low = tf * rf;
    return tw * rate + tf * rw + low / one + (low % one != 0);
}

int withdrawal_quote(money_atto_t amount, int32_t digits, const withdrawal_rule_t *rule, int token_decimals,
                     int64_t today_minor, withdrawal_quote_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!rule || rule->rate == 0 || digits < 0 || digits > MONEY_MAX_DIGITS || token_decimals < 0 ||
        token_decimals > 18) {
        err_set(err, errlen, "withdrawals of this token are not offered for this account");
        return -1;
    }
    money_atto_t unit = s_pow10(18 - digits);
    char text[64];
    if (amount == 0 || amount % unit != 0) {
        err_set(err, errlen, amount ? "the amount has more than %d decimals" : "the amount must be above zero",
                (int) digits);
        return -1;
    }
    if (amount / unit > (money_atto_t) INT64_MAX) {
        err_set(err, errlen, "the amount is too large");
        return -1;
    }
    if (amount < rule->minimum) {
        money_format(rule->minimum, text, sizeof text);
        err_set(err, errlen, "the minimum withdrawal is %s", text);
        return -1;
    }
    if (rule->maximum && amount > rule->maximum) {
        money_format(rule->maximum, text, sizeof text);
        err_set(err, errlen, "the maximum withdrawal is %s", text);
        return -1;
    }
    money_atto_t today = (money_atto_t) (today_minor > 0 ? today_minor : 0) * unit;
    if (rule->daily && today + amount > rule->daily) {
        money_format(rule->daily, text, sizeof text);
        char left[64];
        money_format(rule->daily > today ? rule->daily - today : 0, left, sizeof left);
        err_set(err, errlen, "over the daily limit of %s (%s left today)", text, left);
        return -1;
    }
    if (amount <= rule->fee) {
        err_set(err, errlen, "nothing is left after the fee");
        return -1;
    }
    money_atto_t token = s_div_atto(amount - rule->fee, rule->rate);
    token -= token % s_pow10(18 - token_decimals);
    if (token == 0) {
        err_set(err, errlen, "the amount is too small to send");
        return -1;
    }
    /* Debited: the fee and what the rounded-down token amount is worth, up to the next minor unit; the
     * rest of what was asked (worth less than the token's smallest unit) stays in the account. */
    money_atto_t debit = rule->fee + s_worth_up(token, rule->rate);
    out->amount_minor = (int64_t) (debit / unit + (debit % unit != 0));
    out->digits = digits;
    out->fee = rule->fee;
    out->token_amount = token;
    money_format(token, out->token_text, sizeof out->token_text);
    money_format(rule->fee, out->fee_text, sizeof out->fee_text);
    money_format_minor(out->amount_minor, digits, out->amount_text, sizeof out->amount_text);
    return 0;
}

int withdrawal_approvals_needed(money_atto_t amount, money_atto_t auto_limit, money_atto_t dual_limit)
{
    if (auto_limit && amount <= auto_limit)
        return 0;
    if (dual_limit && amount > dual_limit)
        return 2;
    return 1;
}

/* ---- the rules ---- */

/* One "NAME=a:b:c:d:e" entry (len bytes at p) into *r. 0 or -1 with a reason. */
static int s_rule_parse(const char *p, size_t len, withdrawal_token_rule_t *r, char *err, size_t errlen)
{
    char buf[256];
    if (len >= sizeof buf) {
        err_set(err, errlen, "KASA_WITHDRAW_RULES: an entry is longer than %zu bytes", sizeof buf - 1);
        return -1;
    }
    memcpy(buf, p, len);
    buf[len] = '\0';
    char *eq = strchr(buf, '=');
    if (!eq || eq == buf) {
        err_set(err, errlen, "KASA_WITHDRAW_RULES: \"%.40s\": expected TOKEN_ID[__CURRENCY]=rate:fee:minimum:maximum:daily",
                buf);
        return -1;
    }
    *eq = '\0';
    char *cur = strstr(buf, "__");
    snprintf(r->currency, sizeof r->currency, "%s", cur ? cur + 2 : "USD");
    if (cur)
        *cur = '\0';
    if (!buf[0] || strlen(buf) >= sizeof r->token_id || !r->currency[0]) {
        err_set(err, errlen, "KASA_WITHDRAW_RULES: bad token or currency in \"%.40s\"", buf);
        return -1;
    }
    for (const char *c = buf; *c; c++)
        if (!((*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_')) {
            err_set(err, errlen, "KASA_WITHDRAW_RULES: token id \"%.40s\": A-Z, 0-9 and _ only", buf);
            return -1;
        }
    memcpy(r->token_id, buf, strlen(buf) + 1);   /* fits: checked above */
    money_atto_t *field[5] = { &r->rule.rate, &r->rule.fee, &r->rule.minimum, &r->rule.maximum, &r->rule.daily };
    char *q = eq + 1;
    for (int i = 0; i < 5; i++) {
        char *end = strchr(q, ':');
        if ((i < 4) != (end != NULL)) {
            err_set(err, errlen, "KASA_WITHDRAW_RULES: %s: five fields rate:fee:minimum:maximum:daily", r->token_id);
            return -1;
        }
        if (end)
            *end = '\0';
        char why[96];
        if (money_parse(q, field[i], why, sizeof why) != 0) {
            err_set(err, errlen, "KASA_WITHDRAW_RULES: %s: %s", r->token_id, why);
            return -1;
        }
        q = end ? end + 1 : q;
    }
    if (r->rule.rate == 0) {
        err_set(err, errlen, "KASA_WITHDRAW_RULES: %s: the rate must be above zero", r->token_id);
        return -1;
    }
    if (r->rule.maximum && r->rule.maximum < r->rule.minimum) {
        err_set(err, errlen, "KASA_WITHDRAW_RULES: %s: the maximum is below the minimum", r->token_id);
        return -1;
    }
    return 0;
}

int withdrawal_rules_parse(const char *text, withdrawal_rules_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    const char *p = text ? text : "";
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        size_t n = strcspn(p, ",");
        while (n && p[n - 1] == ' ')
            n--;
        if (out->count == WITHDRAWAL_MAX_RULES) {
            err_set(err, errlen, "KASA_WITHDRAW_RULES: more than %d rules", WITHDRAWAL_MAX_RULES);
            return -1;
        }
        withdrawal_token_rule_t *r = &out->rules[out->count];
        if (s_rule_parse(p, n, r, err, errlen) != 0)
            return -1;
        if (withdrawal_rules_find(out, r->token_id, r->currency)) {
            err_set(err, errlen, "KASA_WITHDRAW_RULES: a second rule for %s on %s accounts", r->token_id, r->currency);
            return -1;
        }
        out->count++;
        p += strcspn(p, ",");
    }
    return 0;
}

const withdrawal_rule_t *withdrawal_rules_find(const withdrawal_rules_t *rules, const char *token_id,
                                               const char *currency)
{
    for (int i = 0; rules && token_id && i < rules->count; i++)
        if (strcmp(rules->rules[i].token_id, token_id) == 0 &&
            strcasecmp(rules->rules[i].currency, currency && currency[0] ? currency : "USD") == 0)
            return &rules->rules[i].rule;
    return NULL;
}
