/* credit_check.c — see credit_check.h. */
#include "actors/credit_check.h"

#include <stdio.h>
#include <string.h>

#include "schema/money.h"

const char *credit_check_answer_name(credit_check_answer_t a)
{
    switch (a) {
    case CREDIT_CHECK_FOUND: return "found";
    case CREDIT_CHECK_NOT_THERE: return "not_there";
    case CREDIT_CHECK_CANNOT_TELL: return "cannot_tell";
    case CREDIT_CHECK_REFUSED: return "refused";
    }
    return "?";
}

int credit_check_logins(const registry_entry_t *e, uint64_t *logins, int cap)
{
    int n = 0;
    int current = 0;
    for (uint32_t i = 0; i < e->tried_count && n < cap; i++) {
        logins[n++] = e->tried[i].login;
        current |= e->tried[i].login == e->view.login;
    }
    if (!current && e->view.login && n < cap)
        logins[n++] = e->view.login;
    return n;
}

void credit_check_window(const registry_entry_t *e, int64_t now_ms, int offset_known, int64_t offset_s,
                      int64_t *from_s, int64_t *to_s)
{
    int64_t anchor_ms = e->view.created_ms ? e->view.created_ms : now_ms;
    for (uint32_t i = 0; i < e->tried_count; i++)
        if (e->tried[i].first_ms && e->tried[i].first_ms < anchor_ms)
            anchor_ms = e->tried[i].first_ms;
    if (e->first_attempt_ms && e->first_attempt_ms < anchor_ms)
        anchor_ms = e->first_attempt_ms;
    if (anchor_ms > now_ms)
        anchor_ms = now_ms;
    int64_t margin = offset_known ? CREDIT_CHECK_MARGIN_S : CREDIT_CHECK_WIDE_S;
    int64_t shift = offset_known ? offset_s : 0;
    *from_s = anchor_ms / 1000 + shift - margin;
    *to_s = now_ms / 1000 + shift + margin;
}

/* What the credit on login was for: the last attempt on it, else the deposit's current figures. */
static void s_expected(const registry_entry_t *e, uint64_t login, int64_t *minor, int32_t *digits)
{
    *minor = e->view.credit_minor;
    *digits = e->view.digits;
    for (uint32_t i = 0; i < e->tried_count; i++)
        if (e->tried[i].login == login) {
            *minor = e->tried[i].credit_minor;
            *digits = e->tried[i].digits;
        }
}

/* Sets out->mismatch (with both figures) when the found deal is not what was sent to login. */
static void s_check_deal(const registry_entry_t *e, credit_check_t *out)
{
    int64_t want = 0, got = 0;
    int32_t digits = 0;
    s_expected(e, out->login, &want, &digits);
    int amount_ok = mt5_parse_amount(out->deal.profit, digits, &got) == 0 && got == want;
    if (out->deal.login == out->login && amount_ok)
        return;
    char want_text[48];
    if (money_format_minor(want, digits, want_text, sizeof want_text) != 0)
        snprintf(want_text, sizeof want_text, "%lld/10^%d", (long long) want, (int) digits);
    out->mismatch = 1;
    snprintf(out->why, sizeof out->why,
             "deal %llu with this reference is %s on login %llu; the credit was %s on login %llu",
             (unsigned long long) out->deal.ticket, out->deal.profit[0] ? out->deal.profit : "(no amount)",
             (unsigned long long) out->deal.login, want_text, (unsigned long long) out->login);
}

credit_check_answer_t credit_check_run(mt5_client_t *mt5, const registry_entry_t *e, const char *ref, int64_t now_ms,
                                 credit_check_t *out)
{
    memset(out, 0, sizeof *out);
    uint64_t logins[REGISTRY_MAX_LOGINS + 1];
    int n = credit_check_logins(e, logins, REGISTRY_MAX_LOGINS + 1);
    int64_t offset_s = 0;
    int known = mt5_clock_offset(mt5, &offset_s) == 0;
    credit_check_window(e, now_ms, known, offset_s, &out->from_s, &out->to_s);
    const char *refs[2] = { ref, NULL };
    if (e->ref[0] && !mt5_comment_matches(e->ref, ref))
        refs[1] = e->ref;   /* an earlier attempt under another reference */
    int refused = 0, unsure = 0;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < 2 && refs[j]; j++) {
            mt5_deal_t found[2];
            size_t count = 0;
            char err[200] = "";
            mt5_result_t r = mt5_find_balance_deals(mt5, logins[i], refs[j], out->from_s, out->to_s, found, 2, &count,
                                                    err, sizeof err);
            if (r == MT5_OK) {
                for (size_t k = 0; k < count && k < 2; k++) {
                    if (out->matches++ == 0) {
                        out->deal = found[k];
                        out->login = logins[i];
                    } else if (!out->ticket2 && found[k].ticket != out->deal.ticket) {
                        out->ticket2 = found[k].ticket;
                    }
                }
                if (count > 2)
                    out->matches += (int) count - 2;
                continue;
            }
            if (r == MT5_NOT_FOUND)
                continue;
            if (!out->why[0])
                snprintf(out->why, sizeof out->why, "login %llu: %s (%s)", (unsigned long long) logins[i], err,
                         mt5_result_name(r));
            if (r == MT5_PERMANENT)
                refused = 1;
            else
                unsure = 1;
        }
    }
    if (out->matches) {
        out->why[0] = '\0';
        s_check_deal(e, out);
        out->answer = CREDIT_CHECK_FOUND;
    } else if (refused) {
        out->answer = CREDIT_CHECK_REFUSED;
    } else if (unsure) {
        out->answer = CREDIT_CHECK_CANNOT_TELL;
    } else {
        out->answer = CREDIT_CHECK_NOT_THERE;
    }
    return out->answer;
}
