/* reconcile.c — see reconcile.h. The comparison works on a copy of kasa's deposits, indexed twice
 * (by transaction id, by MT5 reference) with sorted arrays and binary search: no I/O, no lock held
 * while comparing. */
#include "actors/reconcile.h"

#include <mongoc/mongoc.h>
#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/catchup.h"
#include "actors/checkpoint.h"
#include "actors/cobo.h"
#include "actors/crediter.h"
#include "actors/mio.h"
#include "actors/wdshared.h"
#include "journal/journal.h"
#include "schema/money.h"
#include "schema/mongo.h"
#include "schema/record.h"
#include "schema/timearg.h"
#include "schema/withdrawal.h"

#define S_REF_PREFIX "kasa "
#define S_WD_REF_PREFIX "kasa w"   /* withdrawal_debit_ref / withdrawal_refund_ref: "kasa wd ", "kasa wr " */

/* kasa's view of one deposit, as the comparison needs it. */
typedef struct {
    char tx_id[80];
    char ref[32];
    deposit_state_t state;
    uint64_t login;
    char address[128];
    char amount[48];
    char token_id[40];
    int64_t credit_minor;
    int32_t digits;
    uint64_t ticket;
    int64_t created_ms;
    int seen_at_cobo;
} s_dep_t;

typedef struct {
    s_dep_t *v;
    size_t n, cap;
    int oom;
} s_deps_t;

static void s_collect(void *arg, const registry_entry_t *e)
{
    s_deps_t *d = arg;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 256;
        s_dep_t *g = realloc(d->v, cap * sizeof *g);
        if (!g) {
            d->oom = 1;
            return;
        }
        d->v = g;
        d->cap = cap;
    }
    s_dep_t *x = &d->v[d->n++];
    memset(x, 0, sizeof *x);
    const deposit_view_t *v = &e->view;
    snprintf(x->tx_id, sizeof x->tx_id, "%s", v->tx_id);
    crediter_ref(v->tx_id, x->ref);
    x->state = v->state;
    x->login = v->login;
    snprintf(x->address, sizeof x->address, "%s", v->address);
    snprintf(x->amount, sizeof x->amount, "%s", v->amount);
    snprintf(x->token_id, sizeof x->token_id, "%s", v->token_id);
    x->credit_minor = v->credit_minor;
    x->digits = v->digits;
    x->ticket = v->ticket;
    x->created_ms = v->created_ms;
}

static int s_by_tx(const void *a, const void *b)
{
    return strcmp(((const s_dep_t *) a)->tx_id, ((const s_dep_t *) b)->tx_id);
}

static s_dep_t *s_find_tx(const s_deps_t *d, const char *tx_id)
{
    s_dep_t key;
    if (!d->n)
        return NULL;
    snprintf(key.tx_id, sizeof key.tx_id, "%s", tx_id);
    return bsearch(&key, d->v, d->n, sizeof *d->v, s_by_tx);
}

/* refs: indexes into deps sorted by reference. */
typedef struct {
    const s_deps_t *deps;
    size_t *idx;
    size_t *odd, odd_n;   /* deposits whose reference core is neither short (< 8) nor full (26) */
} s_refs_t;

static const s_deps_t *s_sort_deps;   /* qsort has no argument: set around the one sort that needs it */

static int s_by_ref(const void *a, const void *b)
{
    return strcmp(s_sort_deps->v[*(const size_t *) a].ref, s_sort_deps->v[*(const size_t *) b].ref);
}

static s_dep_t *s_find_ref(const s_refs_t *r, const char *ref)
{
    size_t lo = 0, hi = r->deps->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(r->deps->v[r->idx[mid]].ref, ref);
        if (c == 0)
            return &r->deps->v[r->idx[mid]];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

#define S_CORE_FULL 26   /* crediter_ref's core: every hex digit of a Cobo UUID, cut to fit "kasa " + 26 */
#define S_CORE_CUT_MIN 16  /* the fewest digits mt5_comment_matches accepts for a core cut at the end */
#define S_DEAL_DEPS_MAX 4

/* Adds dep to out[*n] when the comment carries its reference and it is not there yet (cap bounds). */
static void s_offer(const s_dep_t **out, size_t *n, size_t cap, const char *comment, const s_dep_t *dep)
{
    for (size_t j = 0; j < *n; j++)
        if (out[j] == dep)
            return;
    if (*n < cap && mt5_comment_matches(comment, dep->ref))
        out[(*n)++] = dep;
}

/* The deposits whose reference a deal comment carries, by mt5_comment_matches — the crediter's rule,
 * so a comment MT5 prefixed, re-cased or cut is still the deposit's. Found through the reference
 * index, then confirmed by mt5_comment_matches: a comment holding a full core holds it as 26 digits
 * starting somewhere in one of its hex runs (an exact lookup), a cut core is a run's tail of 16..25
 * digits (a prefix range); the whole comment, lower-cased, catches a short core; deposits whose core
 * is neither short nor full (a transaction id with few hex digits) are tried one by one. Fills
 * out[] (no repeats, at most cap); returns how many. */
static size_t s_deal_deps(const s_refs_t *r, const char *comment, const s_dep_t **out, size_t cap)
{
    size_t n = 0, len = strlen(comment);
    char low[64];
    if (len >= sizeof low)
        return 0;
    for (size_t i = 0; i <= len; i++)
        low[i] = (char) tolower((unsigned char) comment[i]);
    const s_deps_t *d = r->deps;
    const s_dep_t *exact = s_find_ref(r, low);
    if (exact)
        s_offer(out, &n, cap, comment, exact);
    for (size_t i = 0; i < len;) {
        size_t run = 0;
        while (i + run < len && isxdigit((unsigned char) low[i + run]))
            run++;
        for (size_t o = 0; run >= S_CORE_CUT_MIN && o + S_CORE_CUT_MIN <= run; o++) {
            char key[32] = "kasa ";
            size_t k = run - o < S_CORE_FULL ? run - o : S_CORE_FULL, p = strlen(key);
            memcpy(key + p, low + i + o, k);
            key[p + k] = '\0';
            size_t lo = 0, hi = d->n, klen = p + k;
            while (lo < hi) {   /* the first reference >= key */
                size_t mid = lo + (hi - lo) / 2;
                if (strcmp(d->v[r->idx[mid]].ref, key) < 0)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            for (; lo < d->n && strncmp(d->v[r->idx[lo]].ref, key, klen) == 0; lo++)
                s_offer(out, &n, cap, comment, &d->v[r->idx[lo]]);
        }
        i += run ? run : 1;
    }
    for (size_t i = 0; i < r->odd_n; i++)
        s_offer(out, &n, cap, comment, &d->v[r->odd[i]]);
    return n;
}

static int s_credited(deposit_state_t s)
{
    return s == DEPOSIT_CREDITED || s == DEPOSIT_NOTIFIED;
}

static int s_cobo_failed(const cobo_tx_t *t)
{
    return strcmp(t->status, "Rejected") == 0 || strcmp(t->status, "Failed") == 0 ||
           strcmp(t->sub_status, "ReOrged") == 0;
}

static void s_add(reconcile_report_t *r, const char *kind, const char *tx_id, uint64_t login, uint64_t ticket,
                  const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void s_add(reconcile_report_t *r, const char *kind, const char *tx_id, uint64_t login, uint64_t ticket,
                  const char *fmt, ...)
{
    r->mismatch_count++;
    if (r->mismatch_count > RECONCILE_MAX_MISMATCHES)
        return;
    if (r->mismatch_count > r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        reconcile_mismatch_t *g = realloc(r->mismatches, cap * sizeof *g);
        if (!g) {
            r->mismatch_count--;   /* still counted below as a failure: the caller sees -1 */
            r->cap = (size_t) -1;
            return;
        }
        r->mismatches = g;
        r->cap = cap;
    }
    reconcile_mismatch_t *m = &r->mismatches[r->mismatch_count - 1];
    memset(m, 0, sizeof *m);
    snprintf(m->kind, sizeof m->kind, "%s", kind);
    snprintf(m->tx_id, sizeof m->tx_id, "%s", tx_id ? tx_id : "");
    m->login = login;
    m->ticket = ticket;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->evidence, sizeof m->evidence, fmt, ap);
    va_end(ap);
}

/* 1 if two decimal texts are the same amount ("250" == "250.000"); 0 if not or unreadable. */
static int s_same_amount(const char *a, const char *b)
{
    money_atto_t x, y;
    char why[64];
    return money_parse(a, &x, why, sizeof why) == 0 && money_parse(b, &y, why, sizeof why) == 0 && x == y;
}

static void s_minor_text(int64_t minor, int digits, char *buf, size_t len)
{
    if (money_format_minor(minor, digits, buf, len) != 0)
        snprintf(buf, len, "%" PRId64 "e-%d", minor, digits);
}

/* cobo_own_fn: a deposit address kasa gave out, or one of the broker's own (as kasa serve asks)? */
static int s_own_address(void *arg, const char *address)
{
    const reconcile_books_t *b = arg;
    return registry_address_owner(b->journal, b->cfg, address);
}

/* Cobo's deposits against kasa's. */
static void s_check_cobo(const reconcile_books_t *b, s_deps_t *deps, reconcile_report_t *r)
{
    for (size_t i = 0; i < b->cobo_count; i++) {
        const cobo_tx_t *t = &b->cobo[i];
        if (cobo_tx_kind(t, s_own_address, (void *) b) != COBO_KIND_DEPOSIT)
            continue;   /* a sweep leg or an internal transfer: never a deposit, nothing to match */
        s_dep_t *d = s_find_tx(deps, t->tx_id);
        if (d)
            d->seen_at_cobo = 1;
        if (strcmp(t->status, "Completed") == 0 && !s_cobo_failed(t)) {
            uint64_t login = registry_address_login(b->journal, t->address);
            if (!d) {
                if (login)
                    s_add(r, "cobo_missing", t->tx_id, login, 0,
                          "cobo_status=Completed address=%s amount=%s token=%s linked_login=%" PRIu64
                          " journal=absent",
                          t->address, t->amount, t->token_id, login);
                continue;
            }
            if (!s_same_amount(t->amount, d->amount))
                s_add(r, "amount_differs", t->tx_id, d->login, d->ticket, "cobo_amount=%s journal_amount=%s token=%s",
                      t->amount, d->amount, t->token_id);
            if (d->state == DEPOSIT_PENDING || d->state == DEPOSIT_RECEIVED || d->state == DEPOSIT_LOCKED)
                s_add(r, "not_credited", t->tx_id, d->login, 0, "cobo_status=Completed journal_state=%s amount=%s",
                      deposit_state_name(d->state), t->amount);
        } else if (s_cobo_failed(t) && d && s_credited(d->state)) {
            s_add(r, "failed_at_cobo", t->tx_id, d->login, d->ticket,
                  "cobo_status=%s cobo_sub_status=%s journal_state=%s ticket=%" PRIu64, t->status,
                  t->sub_status[0] ? t->sub_status : "-", deposit_state_name(d->state), d->ticket);
        }
    }
}

typedef struct {
    const mt5_deal_t *deal[8];
    size_t n;
} s_matches_t;

/* The deals whose comment carries ref (mt5_comment_matches): the first 8 in *m, returns how many. */
static size_t s_ref_deals(const reconcile_books_t *b, const char *ref, s_matches_t *m)
{
    size_t total = 0;
    m->n = 0;
    for (size_t k = 0; k < b->deal_count; k++)
        if (mt5_comment_matches(b->deals[k].comment, ref)) {
            if (m->n < sizeof m->deal / sizeof m->deal[0])
                m->deal[m->n++] = &b->deals[k];
            total++;
        }
    return total;
}

/* "ticket@login,..." of the matches, for evidence. */
static void s_tickets(const s_matches_t *m, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t k = 0; k < m->n && used < len; k++)
        used += (size_t) snprintf(buf + used, len - used, "%s%" PRIu64 "@%" PRIu64, k ? "," : "", m->deal[k]->ticket,
                                  m->deal[k]->login);
}

/* kasa's credited deposits of the window against Cobo and MT5. */
static void s_check_credited(const reconcile_books_t *b, s_deps_t *deps, reconcile_report_t *r)
{
    for (size_t i = 0; i < deps->n; i++) {
        s_dep_t *d = &deps->v[i];
        if (!s_credited(d->state) || d->created_ms < b->from_ms || d->created_ms > b->to_ms)
            continue;
        r->credited++;
        char credit[48];
        s_minor_text(d->credit_minor, d->digits, credit, sizeof credit);
        if (!d->seen_at_cobo) {
            cobo_tx_t t;
            int found = b->cobo_lookup ? b->cobo_lookup(b->cobo_lookup_arg, d->tx_id, &t) : 1;
            if (found == 1)
                s_add(r, "unknown_at_cobo", d->tx_id, d->login, d->ticket, "journal_state=%s credited=%s cobo=absent",
                      deposit_state_name(d->state), credit);
            else if (found < 0)
                s_add(r, "unknown_at_cobo", d->tx_id, d->login, d->ticket,
                      "journal_state=%s credited=%s cobo=unanswered", deposit_state_name(d->state), credit);
            else if (s_cobo_failed(&t) || strcmp(t.status, "Completed") != 0)
                s_add(r, "failed_at_cobo", d->tx_id, d->login, d->ticket, "cobo_status=%s journal_state=%s",
                      t.status, deposit_state_name(d->state));
        }
        s_matches_t m;
        size_t total = s_ref_deals(b, d->ref, &m);
        if (total == 0) {
            s_add(r, "deal_missing", d->tx_id, d->login, d->ticket,
                  "ref=\"%s\" journal_ticket=%" PRIu64 " credited=%s mt5_deals_with_ref=0", d->ref, d->ticket, credit);
            continue;
        }
        if (total > 1) {
            char tickets[160];
            s_tickets(&m, tickets, sizeof tickets);
            s_add(r, "deal_duplicate", d->tx_id, d->login, d->ticket,
                  "ref=\"%s\" mt5_deals_with_ref=%zu tickets=%s credited=%s", d->ref, total, tickets, credit);
            continue;
        }
        const mt5_deal_t *deal = m.deal[0];
        if (deal->login != d->login)
            s_add(r, "deal_login", d->tx_id, d->login, deal->ticket, "ref=\"%s\" journal_login=%" PRIu64
                  " mt5_login=%" PRIu64, d->ref, d->login, deal->login);
        int64_t minor = 0;
        if (mt5_parse_amount(deal->profit, d->digits, &minor) != 0 || minor != d->credit_minor)
            s_add(r, "deal_amount", d->tx_id, d->login, deal->ticket, "ref=\"%s\" journal_credit=%s mt5_profit=%s",
                  d->ref, credit, deal->profit[0] ? deal->profit : "?");
        if (d->ticket && deal->ticket != d->ticket)
            s_add(r, "deal_ticket", d->tx_id, d->login, deal->ticket,
                  "ref=\"%s\" journal_ticket=%" PRIu64 " mt5_ticket=%" PRIu64, d->ref, d->ticket, deal->ticket);
    }
}

/* kasa's withdrawals, copied out of the registry. */
typedef struct {
    withdrawal_view_t *v;
    size_t n, cap;
    int oom;
} s_wds_t;

static void s_collect_wd(void *arg, const withdrawal_view_t *w)
{
    s_wds_t *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        withdrawal_view_t *g = realloc(l->v, cap * sizeof *g);
        if (!g) {
            l->oom = 1;
            return;
        }
        l->v = g;
        l->cap = cap;
    }
    l->v[l->n++] = *w;
}

int reconcile_wd_rank(withdrawal_state_t s)
{
    switch (s) {
    case WITHDRAWAL_REQUESTED: return 1;
    case WITHDRAWAL_DEBITED: case WITHDRAWAL_APPROVED: case WITHDRAWAL_SENT: case WITHDRAWAL_HELD: return 2;
    case WITHDRAWAL_COMPLETED: case WITHDRAWAL_REFUNDING: return 3;
    case WITHDRAWAL_REJECTED: case WITHDRAWAL_REFUNDED: return 4;
    default: return 0;
    }
}

static int s_wd_by_id(const void *a, const void *b)
{
    return strcmp(((const withdrawal_view_t *) a)->id, ((const withdrawal_view_t *) b)->id);
}

/* Cluster mode: each withdrawals document into wds, by id: one this node lacks is added, one it knows
 * replaces its view when the document is as far along or further (reconcile_wd_rank). */
static void s_merge_shared_wds(const reconcile_books_t *b, s_wds_t *wds)
{
    if (!b->shared_wd_count)
        return;
    size_t mine = wds->n;
    if (mine)
        qsort(wds->v, mine, sizeof *wds->v, s_wd_by_id);
    for (size_t i = 0; i < b->shared_wd_count && !wds->oom; i++) {
        const withdrawal_view_t *doc = &b->shared_wds[i];
        withdrawal_view_t *w = mine ? bsearch(doc, wds->v, mine, sizeof *wds->v, s_wd_by_id) : NULL;
        if (!w)
            s_collect_wd(wds, doc);
        else if (reconcile_wd_rank(doc->state) >= reconcile_wd_rank(w->state))
            *w = *doc;
    }
}

/* How many deals of one reference a withdrawal in state s must have: 0 none, 1 exactly one, 2 at
 * most one (the withdrawer may be between the deal and its record). */
static int s_wd_expect(withdrawal_state_t s, char op)
{
    if (op == 'd')
        return s == WITHDRAWAL_REQUESTED ? 2 : s == WITHDRAWAL_NONE || s == WITHDRAWAL_REJECTED ? 0 : 1;
    return s == WITHDRAWAL_REFUNDED ? 1 : s == WITHDRAWAL_REFUNDING ? 2 : 0;
}

/* One withdrawal's debit (op 'd', deal of minus its amount) or refund (op 'r', plus its amount). */
static void s_check_wd_op(const reconcile_books_t *b, const withdrawal_view_t *w, char op, reconcile_report_t *r)
{
    char ref[32], kind[24], amount[48];
    const char *what = op == 'd' ? "debit" : "refund";
    if (op == 'd')
        withdrawal_debit_ref(w->id, ref);
    else
        withdrawal_refund_ref(w->id, ref);
    int64_t want_minor = op == 'd' ? -w->amount_minor : w->amount_minor;
    s_minor_text(want_minor, w->digits, amount, sizeof amount);
    uint64_t ticket = op == 'd' ? w->debit_ticket : w->refund_ticket;
    int expect = s_wd_expect(w->state, op);
    s_matches_t m;
    size_t total = s_ref_deals(b, ref, &m);
    char tickets[160];
    s_tickets(&m, tickets, sizeof tickets);
    if (total == 0 && expect == 1) {
        snprintf(kind, sizeof kind, "wd_%s_missing", what);
        s_add(r, kind, w->id, w->login, ticket,
              "ref=\"%s\" journal_state=%s expected_deals=1 expected_profit=%s mt5_deals_with_ref=0", ref,
              withdrawal_state_name(w->state), amount);
        return;
    }
    if (total > 0 && expect == 0) {
        snprintf(kind, sizeof kind, "wd_%s_unexpected", what);
        s_add(r, kind, w->id, w->login, m.deal[0]->ticket,
              "ref=\"%s\" journal_state=%s expected_deals=0 mt5_deals_with_ref=%zu tickets=%s mt5_profit=%s", ref,
              withdrawal_state_name(w->state), total, tickets, m.deal[0]->profit);
        return;
    }
    if (total > 1) {
        snprintf(kind, sizeof kind, "wd_%s_duplicate", what);
        s_add(r, kind, w->id, w->login, ticket,
              "ref=\"%s\" journal_state=%s expected_deals=1 mt5_deals_with_ref=%zu tickets=%s expected_profit=%s",
              ref, withdrawal_state_name(w->state), total, tickets, amount);
        return;
    }
    if (total == 0)
        return;
    const mt5_deal_t *deal = m.deal[0];
    if (deal->login != w->login) {
        snprintf(kind, sizeof kind, "wd_%s_login", what);
        s_add(r, kind, w->id, w->login, deal->ticket, "ref=\"%s\" journal_login=%" PRIu64 " mt5_login=%" PRIu64, ref,
              w->login, deal->login);
    }
    int64_t minor = 0;
    if (mt5_parse_amount(deal->profit, w->digits, &minor) != 0 || minor != want_minor) {
        snprintf(kind, sizeof kind, "wd_%s_amount", what);
        s_add(r, kind, w->id, w->login, deal->ticket, "ref=\"%s\" expected_profit=%s mt5_profit=%s", ref, amount,
              deal->profit[0] ? deal->profit : "?");
    }
}

/* kasa's withdrawals of the window against MT5 (their debit and refund deals) and Cobo (a completed
 * one's transfer). */
static void s_check_withdrawals(const reconcile_books_t *b, const s_wds_t *wds, reconcile_report_t *r)
{
    for (size_t i = 0; i < wds->n; i++) {
        const withdrawal_view_t *w = &wds->v[i];
        if (w->created_ms < b->from_ms || w->created_ms > b->to_ms)
            continue;
        r->withdrawals++;
        s_check_wd_op(b, w, 'd', r);
        s_check_wd_op(b, w, 'r', r);
        if (w->state != WITHDRAWAL_COMPLETED || !b->cobo_lookup)
            continue;
        cobo_tx_t t;
        int found = w->cobo_id[0] ? b->cobo_lookup(b->cobo_lookup_arg, w->cobo_id, &t) : 1;
        if (found != 0)
            s_add(r, "wd_transfer_unknown", w->id, w->login, 0,
                  "journal_state=COMPLETED request_id=%s cobo_id=%s cobo=%s token_amount=%s", w->request_id,
                  w->cobo_id[0] ? w->cobo_id : "-", found < 0 ? "unanswered" : "absent", w->amount);
        else if (strcmp(t.status, "Completed") != 0)
            s_add(r, "wd_transfer_status", w->id, w->login, 0,
                  "journal_state=COMPLETED cobo_id=%s cobo_status=%s cobo_sub_status=%s", w->cobo_id, t.status,
                  t.sub_status[0] ? t.sub_status : "-");
    }
}

/* 1 if a withdrawal kasa knows has a debit or refund reference the comment carries. */
static int s_wd_known(const s_wds_t *wds, const char *comment)
{
    char ref[32];
    for (size_t i = 0; i < wds->n; i++) {
        withdrawal_debit_ref(wds->v[i].id, ref);
        if (mt5_comment_matches(comment, ref))
            return 1;
        withdrawal_refund_ref(wds->v[i].id, ref);
        if (mt5_comment_matches(comment, ref))
            return 1;
    }
    return 0;
}

/* MT5's deals with a kasa reference against kasa's deposits and withdrawals. A withdrawal reference
 * ("kasa w", which no deposit reference holds: those are hex) is a withdrawal's, never a deposit's. */
static void s_check_deals(const reconcile_books_t *b, const s_refs_t *refs, const s_wds_t *wds,
                          reconcile_report_t *r)
{
    for (size_t k = 0; k < b->deal_count; k++) {
        const mt5_deal_t *deal = &b->deals[k];
        if (strcasestr(deal->comment, S_WD_REF_PREFIX)) {
            r->kasa_deals++;
            if (!s_wd_known(wds, deal->comment))
                s_add(r, "wd_deal_unknown", "", deal->login, deal->ticket,
                      "comment=\"%s\" mt5_login=%" PRIu64 " mt5_profit=%s mt5_time=%" PRId64
                      " journal=no withdrawal has this ref",
                      deal->comment, deal->login, deal->profit, deal->time_s);
            continue;
        }
        const s_dep_t *found[S_DEAL_DEPS_MAX], *d = NULL;
        size_t n = s_deal_deps(refs, deal->comment, found, S_DEAL_DEPS_MAX);
        if (n == 0 && !strcasestr(deal->comment, S_REF_PREFIX))
            continue;
        r->kasa_deals++;
        for (size_t i = 0; i < n; i++)
            if (!d || s_credited(found[i]->state))
                d = found[i];
        if (!d)
            s_add(r, "deal_unknown", "", deal->login, deal->ticket,
                  "comment=\"%s\" mt5_login=%" PRIu64 " mt5_profit=%s mt5_time=%" PRId64
                  " journal=no deposit has this ref",
                  deal->comment, deal->login, deal->profit, deal->time_s);
        else if (!s_credited(d->state))
            s_add(r, "deal_uncredited", d->tx_id, deal->login, deal->ticket,
                  "ref=\"%s\" comment=\"%s\" journal_state=%s mt5_profit=%s", d->ref, deal->comment,
                  deposit_state_name(d->state), deal->profit);
    }
}

/* ---- cluster mode: what the other nodes did --------------------------------------------------- */

static int s_remote_by_tx_time(const void *a, const void *b)
{
    const reconcile_remote_t *x = a, *y = b;
    int c = strcmp(x->tx_id, y->tx_id);
    return c ? c : (x->time_ms > y->time_ms) - (x->time_ms < y->time_ms);
}

/* One deposit as the other nodes' transitions v[0..n) (one tx, oldest first) describe it, into *x. */
static void s_remote_fold(const reconcile_remote_t *v, size_t n, s_dep_t *x)
{
    memset(x, 0, sizeof *x);
    snprintf(x->tx_id, sizeof x->tx_id, "%s", v[0].tx_id);
    crediter_ref(x->tx_id, x->ref);
    x->state = v[0].to;
    x->created_ms = v[0].time_ms;
    for (size_t i = 0; i < n; i++) {
        const reconcile_remote_t *t = &v[i];
        if (t->address[0] && !x->address[0])
            snprintf(x->address, sizeof x->address, "%s", t->address);
        if (t->amount[0] && !x->amount[0])
            snprintf(x->amount, sizeof x->amount, "%s", t->amount);
        if (t->token_id[0] && !x->token_id[0])
            snprintf(x->token_id, sizeof x->token_id, "%s", t->token_id);
        if (deposit_state_rank(t->to) >= deposit_state_rank(x->state))
            x->state = t->to;
        if (t->login)
            x->login = t->login;
        if (t->credit_minor) {
            x->credit_minor = t->credit_minor;
            x->digits = t->digits;
        }
        if (t->ticket && s_credited(t->to))
            x->ticket = t->ticket;
    }
}

/* Merges the other nodes' view into deps (sorted by tx on entry and on return): a deposit another
 * node took further (credited, rejected, held) is judged by that; one this node never saw is added. */
static int s_merge_remote(const reconcile_books_t *b, s_deps_t *deps)
{
    if (!b->remote_count)
        return 0;
    reconcile_remote_t *v = malloc(b->remote_count * sizeof *v);
    if (!v)
        return -1;
    memcpy(v, b->remote, b->remote_count * sizeof *v);
    qsort(v, b->remote_count, sizeof *v, s_remote_by_tx_time);
    size_t local_n = deps->n;
    for (size_t i = 0, j; i < b->remote_count; i = j) {
        for (j = i + 1; j < b->remote_count && strcmp(v[j].tx_id, v[i].tx_id) == 0; j++)
            ;
        s_dep_t x;
        s_remote_fold(&v[i], j - i, &x);
        s_deps_t local = { deps->v, local_n, local_n, 0 };
        s_dep_t *mine = s_find_tx(&local, x.tx_id);
        if (mine) {
            if (deposit_state_rank(x.state) > deposit_state_rank(mine->state)) {
                mine->state = x.state;
                mine->login = x.login ? x.login : mine->login;
                mine->credit_minor = x.credit_minor ? x.credit_minor : mine->credit_minor;
                mine->digits = x.credit_minor ? x.digits : mine->digits;
                mine->ticket = x.ticket;
            }
            continue;
        }
        if (deps->n == deps->cap) {
            size_t cap = deps->cap ? deps->cap * 2 : 256;
            s_dep_t *g = realloc(deps->v, cap * sizeof *g);
            if (!g) {
                free(v);
                return -1;
            }
            deps->v = g;
            deps->cap = cap;
        }
        deps->v[deps->n++] = x;
    }
    free(v);
    if (deps->n)
        qsort(deps->v, deps->n, sizeof *deps->v, s_by_tx);
    return 0;
}

long reconcile_compare(const reconcile_books_t *b, reconcile_report_t *r)
{
    memset(r, 0, sizeof *r);
    s_deps_t deps = { 0 };
    long seen = registry_each_all(b->journal, s_collect, &deps);   /* finished ones from their index too */
    if (deps.n)   /* no deposit at all: deps.v is NULL, which qsort and bsearch may not be given */
        qsort(deps.v, deps.n, sizeof *deps.v, s_by_tx);
    size_t *idx = NULL;
    if (seen < 0 || deps.oom || s_merge_remote(b, &deps) != 0 || !(idx = malloc((deps.n ? deps.n : 1) * sizeof *idx))) {
        free(deps.v);
        free(idx);
        return -1;
    }
    for (size_t i = 0; i < deps.n; i++)
        idx[i] = i;
    s_sort_deps = &deps;
    qsort(idx, deps.n, sizeof *idx, s_by_ref);
    s_sort_deps = NULL;
    size_t *odd = malloc((deps.n ? deps.n : 1) * sizeof *odd), odd_n = 0;
    if (!odd) {
        free(deps.v);
        free(idx);
        return -1;
    }
    for (size_t i = 0; i < deps.n; i++) {
        size_t core = strlen(deps.v[i].ref) - strlen(S_REF_PREFIX);
        if (core >= 8 && core != S_CORE_FULL)
            odd[odd_n++] = i;
    }
    s_refs_t refs = { &deps, idx, odd, odd_n };
    for (size_t i = 0; i < deps.n; i++)
        r->deposits += deps.v[i].created_ms >= b->from_ms && deps.v[i].created_ms <= b->to_ms;
    r->cobo_deposits = b->cobo_count;
    r->deals = b->deal_count;
    r->logins = b->login_count;

    s_wds_t wds = { 0 };
    if (b->withdrawals)
        withdrawals_each(b->withdrawals, 0, 0, s_collect_wd, &wds);
    if (!wds.oom)
        s_merge_shared_wds(b, &wds);
    if (wds.oom) {
        free(wds.v);
        free(odd);
        free(idx);
        free(deps.v);
        return -1;
    }

    s_check_cobo(b, &deps, r);
    s_check_credited(b, &deps, r);
    s_check_withdrawals(b, &wds, r);
    s_check_deals(b, &refs, &wds, r);

    free(wds.v);
    free(odd);
    free(idx);
    free(deps.v);
    if (r->cap == (size_t) -1) {
        r->cap = 0;
        return -1;
    }
    return (long) r->mismatch_count;
}

void reconcile_report_free(reconcile_report_t *r)
{
    if (!r)
        return;
    free(r->mismatches);
    memset(r, 0, sizeof *r);
}

/* ---- gathering ------------------------------------------------------------------------------- */

typedef struct {
    cobo_tx_t *v;
    size_t n, cap;
    int oom;
} s_cobo_list_t;

static void s_on_cobo(void *arg, const cobo_tx_t *tx, const char *why)
{
    (void) why;
    s_cobo_list_t *l = arg;
    if (!tx)
        return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        cobo_tx_t *g = realloc(l->v, cap * sizeof *g);
        if (!g) {
            l->oom = 1;
            return;
        }
        l->v = g;
        l->cap = cap;
    }
    l->v[l->n++] = *tx;
}

typedef struct {
    mt5_deal_t *v;
    size_t n, cap;
    int oom;
} s_deal_list_t;

static int s_on_deal(void *arg, const mt5_deal_t *deal)
{
    s_deal_list_t *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        mt5_deal_t *g = realloc(l->v, cap * sizeof *g);
        if (!g) {
            l->oom = 1;
            return 1;
        }
        l->v = g;
        l->cap = cap;
    }
    l->v[l->n++] = *deal;
    return 0;
}

typedef struct {
    uint64_t *v;
    size_t n, cap;
} s_logins_t;

static void s_login_add(s_logins_t *l, uint64_t login)
{
    if (!login)
        return;
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i] == login)
            return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        uint64_t *g = realloc(l->v, cap * sizeof *g);
        if (!g)
            return;
        l->v = g;
        l->cap = cap;
    }
    l->v[l->n++] = login;
}

static void s_login_of(void *arg, const registry_entry_t *e)
{
    s_login_add(arg, e->view.login);
}

static void s_login_of_wd(void *arg, const withdrawal_view_t *w)
{
    s_login_add(arg, w->login);
}

/* Every login an address is linked to. 0, or -1 with a reason. */
static int s_linked_logins(registry_t *reg, s_logins_t *l, char *err, size_t errlen)
{
    size_t n = registry_link_count(reg);
    registry_link_t *links = n ? malloc(n * sizeof *links) : NULL;
    int got = n ? (links ? registry_links(reg, 0, NULL, 0, (int) n, links) : -1) : 0;
    if (got < 0) {
        free(links);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < (size_t) got && i < n; i++)
        s_login_add(l, links[i].login);
    free(links);
    return 0;
}

static int s_lookup(void *arg, const char *tx_id, cobo_tx_t *out)
{
    char err[256];
    cobo_err_t e = cobo_get_transaction(arg, tx_id, out, err, sizeof err);
    if (e == COBO_OK)
        return 0;
    return e == COBO_ERR_HTTP_4XX && cobo_client_http_status(arg) == 404 ? 1 : -1;
}

/* A transitions document's unsigned number (a JSON-safe number, or decimal text above 2^53). */
static uint64_t s_doc_u64(const bson_t *doc, const char *key)
{
    bson_iter_t it;
    if (!bson_iter_init_find(&it, doc, key))
        return 0;
    if (BSON_ITER_HOLDS_UTF8(&it))
        return strtoull(bson_iter_utf8(&it, NULL), NULL, 10);
    return BSON_ITER_HOLDS_NUMBER(&it) && bson_iter_as_int64(&it) > 0 ? (uint64_t) bson_iter_as_int64(&it) : 0;
}

/* Makes room in *v (of elements of size bytes, *cap of them, n used) for one more. 0, or -1. */
static int s_grow(void **v, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : 256;
    void *g = realloc(*v, c * size);
    if (!g)
        return -1;
    *v = g;
    *cap = c;
    return 0;
}

typedef struct {
    reconcile_books_t *b;
    size_t cap;
} s_gather_t;

/* One `transitions` document of another node's deposit into b->remote. 0, or -1 on no memory. */
static int s_remote_add(void *arg, const bson_t *doc)
{
    s_gather_t *g = arg;
    reconcile_remote_t t;
    memset(&t, 0, sizeof t);
    char to[32], credit[32];
    mio_str(doc, "transaction_id", t.tx_id, sizeof t.tx_id);
    mio_str(doc, "node", t.node, sizeof t.node);
    mio_str(doc, "to", to, sizeof to);
    int st = deposit_state_from_name(to);
    if (!t.tx_id[0] || st < 0)
        return 0;
    t.to = (deposit_state_t) st;
    t.login = s_doc_u64(doc, "login");
    t.ticket = s_doc_u64(doc, "ticket");
    mio_str(doc, "credit_minor", credit, sizeof credit);
    t.credit_minor = strtoll(credit, NULL, 10);
    t.digits = (int32_t) s_doc_u64(doc, "digits");
    mio_str(doc, "address", t.address, sizeof t.address);
    mio_str(doc, "amount", t.amount, sizeof t.amount);
    mio_str(doc, "token_id", t.token_id, sizeof t.token_id);
    bson_iter_t it;
    if (bson_iter_init_find(&it, doc, "time") && BSON_ITER_HOLDS_DATE_TIME(&it))
        t.time_ms = bson_iter_date_time(&it);
    if (s_grow((void **) &g->b->remote, &g->cap, g->b->remote_count, sizeof t) != 0)
        return -1;
    g->b->remote[g->b->remote_count++] = t;
    return 0;
}

/* One `withdrawals` document (as its holder wrote it) into b->shared_wds. 0, or -1 on no memory. */
static int s_shared_wd_add(void *arg, const bson_t *doc)
{
    s_gather_t *g = arg;
    withdrawal_view_t w;
    char node[64];
    int32_t epoch;
    if (wdshared_parse(doc, &w, node, &epoch) != 0)
        return 0;
    if (s_grow((void **) &g->b->shared_wds, &g->cap, g->b->shared_wd_count, sizeof w) != 0)
        return -1;
    g->b->shared_wds[g->b->shared_wd_count++] = w;
    return 0;
}

/* Calls add for every document of collection that matches filter. 0, or -1 with a reason (MongoDB
 * did not answer in full, or no memory). */
static int s_each_doc(const config_t *cfg, mongoc_client_t *client, const char *collection, const bson_t *filter,
                      int (*add)(void *, const bson_t *), void *arg, char *err, size_t errlen)
{
    mongoc_collection_t *c =
        mongoc_client_get_collection(client, cfg->mongo_db[0] ? cfg->mongo_db : MONGO_DEFAULT_DB, collection);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, filter, NULL, NULL);
    const bson_t *doc;
    bson_error_t error;
    int rc = 0;
    while (rc == 0 && mongoc_cursor_next(cur, &doc))
        if (add(arg, doc) != 0) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
        }
    if (rc == 0 && mongoc_cursor_error(cur, &error)) {
        snprintf(err, errlen, "MongoDB %s: %.200s", collection, error.message);
        rc = -1;
    }
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(c);
    return rc;
}

/* Cluster mode: every deposit transition the other nodes projected to MongoDB (`transitions`) into
 * b->remote, and every withdrawals document into b->shared_wds, on one client that waits at most
 * MIO_ONE_OFF_TIMEOUT_MS. 0, or -1 with a reason (MongoDB unreachable: the cluster's view cannot be
 * read). */
static int s_gather_remote(const config_t *cfg, reconcile_books_t *b, char *err, size_t errlen)
{
    char why[160];
    mongoc_client_t *client = mio_client_new(cfg->mongo_uri, MIO_ONE_OFF_TIMEOUT_MS, "kasa-reconcile", why, sizeof why);
    if (!client) {
        snprintf(err, errlen, "MongoDB: %s", why);
        return -1;
    }
    bson_t *filter = BCON_NEW("kind", BCON_UTF8(record_kind_name(RECORD_DEPOSIT)), "node", "{", "$ne",
                              BCON_UTF8(cfg->node_id), "}");
    bson_t all = BSON_INITIALIZER;
    s_gather_t remote = { b, b->remote_count }, shared = { b, b->shared_wd_count };
    int rc = s_each_doc(cfg, client, MONGO_TRANSITIONS, filter, s_remote_add, &remote, err, errlen);
    if (rc == 0)
        rc = s_each_doc(cfg, client, WDSHARED_COLLECTION, &all, s_shared_wd_add, &shared, err, errlen);
    bson_destroy(filter);
    bson_destroy(&all);
    mongoc_client_destroy(client);
    return rc;
}

int reconcile_gather(const config_t *cfg, int64_t from_ms, int64_t to_ms, reconcile_books_t *b, char *err,
                     size_t errlen)
{
    memset(b, 0, sizeof *b);
    b->from_ms = from_ms;
    b->to_ms = to_ms;
    char why[512];
    b->cfg = cfg;
    /* every deposit, link and withdrawal as a start has them: the newest snapshot (its index of
     * finished deposits too) and the journal after it, so a pruned archive loses none, and a long
     * history costs its snapshot, not a replay */
    b->journal = checkpoint_restore(cfg->journal_dir, &checkpoint_registry, cfg, 0, NULL, why, sizeof why);
    if (!b->journal) {
        snprintf(err, errlen, "journal %s: %s", cfg->journal_dir, why);
        return -1;
    }
    if (cfg->cluster && s_gather_remote(cfg, b, why, sizeof why) != 0) {
        snprintf(err, errlen, "cluster mode: %s", why);
        return -1;
    }
    b->withdrawals = checkpoint_restore(cfg->journal_dir, &checkpoint_withdrawals, cfg, 0, NULL, why, sizeof why);
    if (!b->withdrawals) {
        snprintf(err, errlen, "journal %s (withdrawals): %s", cfg->journal_dir, why);
        return -1;
    }
    /* Cobo */
    cobo_client_t *cobo = cobo_client_new(cfg->cobo_api_url, cfg->cobo_api_key, cfg->cobo_api_secret,
                                          cfg->cobo_webhook_pubkey, config_cobo_timeout_ms(cfg), why, sizeof why);
    if (!cobo) {
        snprintf(err, errlen, "Cobo: %s", why);
        return -1;
    }
    b->cobo_lookup = s_lookup;
    b->cobo_lookup_arg = cobo;
    s_cobo_list_t cl = { 0 };
    catchup_report_t rep;
    memset(&rep, 0, sizeof rep);
    cobo_tx_query_t q = { .types = "Deposit", .wallet_ids = cfg->cobo_wallet_id, .min_created_ms = from_ms,
                          .max_created_ms = to_ms, .limit = 50 };
    int rc = catchup_list_all(cobo, &q, s_on_cobo, &cl, RECONCILE_COBO_RETRIES, NULL, NULL, &rep, why, sizeof why);
    b->cobo = cl.v;
    b->cobo_count = cl.n;
    if (rc != 0 || cl.oom) {
        snprintf(err, errlen, "Cobo deposit list: %s", cl.oom ? "out of memory" : why);
        return -1;
    }
    /* MT5: every login kasa credited, linked or debited */
    s_logins_t logins = { 0 };
    long seen = registry_each_all(b->journal, s_login_of, &logins);
    withdrawals_each(b->withdrawals, 0, 0, s_login_of_wd, &logins);
    for (size_t i = 0; i < b->shared_wd_count; i++)
        s_login_add(&logins, b->shared_wds[i].login);
    for (size_t i = 0; i < b->remote_count; i++)
        s_login_add(&logins, b->remote[i].login);
    if (seen < 0 || s_linked_logins(b->journal, &logins, why, sizeof why) != 0) {
        free(logins.v);
        snprintf(err, errlen, "journal %s: %s", cfg->journal_dir, seen < 0 ? "the index of finished deposits "
                 "cannot be read whole (kasa journal verify says where)" : why);
        return -1;
    }
    b->logins = logins.v;
    b->login_count = logins.n;
    mt5_client_t *mt5 = mt5_client_new(cfg->mt5_url, cfg->mt5_login, cfg->mt5_password, cfg->mt5_ca_file, 15000);
    if (!mt5) {
        snprintf(err, errlen, "MT5: cannot make a client (MT5_URL, MT5_LOGIN, MT5_PASSWORD)");
        return -1;
    }
    s_deal_list_t dl = { 0 };
    int64_t from_s = from_ms / 1000 - RECONCILE_MT5_SLACK_S, to_s = to_ms / 1000 + RECONCILE_MT5_SLACK_S;
    rc = 0;
    for (size_t i = 0; i < logins.n && rc == 0; i++) {
        mt5_result_t r = mt5_each_balance_deal(mt5, logins.v[i], from_s, to_s, s_on_deal, &dl, why, sizeof why);
        if (r == MT5_OK && !dl.oom)
            continue;
        if (r == MT5_PERMANENT && mt5_last_retcode(mt5) == 13)
            continue;   /* no such account at MT5: no deals (a deposit for it would be HELD) */
        snprintf(err, errlen, "MT5 deals of login %" PRIu64 ": %s", logins.v[i],
                 dl.oom ? "out of memory" : why[0] ? why : mt5_result_name(r));
        rc = -1;
    }
    mt5_client_destroy(&mt5);
    b->deals = dl.v;
    b->deal_count = dl.n;
    return rc;
}

void reconcile_books_free(reconcile_books_t *b)
{
    if (!b)
        return;
    registry_destroy(&b->journal);
    withdrawals_destroy(&b->withdrawals);
    if (b->cobo_lookup == s_lookup) {
        cobo_client_t *c = b->cobo_lookup_arg;
        cobo_client_destroy(&c);
    }
    free(b->cobo);
    free(b->deals);
    free(b->logins);
    free(b->remote);
    free(b->shared_wds);
    memset(b, 0, sizeof *b);
}

/* ---- reports ------------------------------------------------------------------------------- */

void reconcile_report_text(const reconcile_books_t *b, const reconcile_report_t *r, jbuf_t *out)
{
    char from[32], to[32];
    timearg_format(b->from_ms, from, sizeof from);
    timearg_format(b->to_ms, to, sizeof to);
    jbuf_printf(out, "reconcile %s .. %s (journal, Cobo, MT5)\n", from, to);
    size_t shown = r->mismatch_count < RECONCILE_MAX_MISMATCHES ? r->mismatch_count : RECONCILE_MAX_MISMATCHES;
    for (size_t i = 0; i < shown; i++) {
        const reconcile_mismatch_t *m = &r->mismatches[i];
        jbuf_printf(out, "MISMATCH %s tx=%s login=%" PRIu64 " ticket=%" PRIu64 " %s\n", m->kind,
                    m->tx_id[0] ? m->tx_id : "-", m->login, m->ticket, m->evidence);
    }
    jbuf_printf(out,
                "checked: %zu deposits in the journal for the window (%zu credited), %zu withdrawals, "
                "%zu Cobo deposits, %zu MT5 logins, %zu MT5 balance deals (%zu with a kasa reference)\n",
                r->deposits, r->credited, r->withdrawals, r->cobo_deposits, r->logins, r->deals, r->kasa_deals);
    if (r->mismatch_count == 0)
        jbuf_puts(out, "the books agree\n");
    else
        jbuf_printf(out, "%zu mismatch%s: the books do not agree\n", r->mismatch_count,
                    r->mismatch_count == 1 ? "" : "es");
}

void reconcile_report_json(const reconcile_books_t *b, const reconcile_report_t *r, jbuf_t *out)
{
    char from[32], to[32];
    timearg_format(b->from_ms, from, sizeof from);
    timearg_format(b->to_ms, to, sizeof to);
    jbuf_printf(out, "{\"from\":\"%s\",\"to\":\"%s\",\"agree\":%s,\"checked\":{\"deposits\":%zu,\"credited\":%zu,"
                     "\"withdrawals\":%zu,\"cobo_deposits\":%zu,\"mt5_logins\":%zu,\"mt5_deals\":%zu,"
                     "\"kasa_deals\":%zu},\"mismatch_count\":%zu,\"mismatches\":[",
                from, to, r->mismatch_count ? "false" : "true", r->deposits, r->credited, r->withdrawals,
                r->cobo_deposits, r->logins, r->deals, r->kasa_deals, r->mismatch_count);
    size_t shown = r->mismatch_count < RECONCILE_MAX_MISMATCHES ? r->mismatch_count : RECONCILE_MAX_MISMATCHES;
    for (size_t i = 0; i < shown; i++) {
        const reconcile_mismatch_t *m = &r->mismatches[i];
        jbuf_puts(out, i ? ",{\"kind\":" : "{\"kind\":");
        jbuf_str(out, m->kind);
        jbuf_puts(out, ",\"tx\":");
        jbuf_str(out, m->tx_id[0] ? m->tx_id : NULL);
        jbuf_printf(out, ",\"login\":%" PRIu64 ",\"ticket\":%" PRIu64 ",\"evidence\":", m->login, m->ticket);
        jbuf_str(out, m->evidence);
        jbuf_puts(out, "}");
    }
    jbuf_puts(out, "]}\n");
}
