/* registry.c — see registry.h. Deposits in a czmq hash (tx_id → entry) plus a vector in arrival
 * order (for "newest first" listings); links in a second hash (address → login, chain); finished
 * deposits that left memory in the index of the snapshot started from (journal/findex.h).
 *
 * One function, s_apply_locked(), turns a record into memory, for replay and for live commits
 * alike: what a running kasa holds in memory is by construction what a replay of its journal
 * rebuilds. */
#include "actors/registry.h"

#include <czmq.h>
#undef LOG_DEBUG /* <syslog.h>, via czmq, would shadow tools/log.h's levels */
#undef LOG_INFO
#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "journal/findex.h"
#include "journal/snapshot.h"
#include "schema/cobo_tx.h"
#include "schema/log.h"
#include "schema/money.h"

typedef struct {
    uint64_t login;
    char chain_id[24];
    uint64_t lsn;   /* the record that made the link (0 if unknown) */
    int64_t time_ms;        /* when that record was written */
    char address[128];      /* as linked (the table's key folds 0x addresses to lower case) */
} s_link_t;

/* A deposit in memory: its entry (first, so a registry_entry_t * found by s_find is its node), and
 * its place in its login's list (newest first), which answers the investor panel's "my deposits"
 * without a scan of every deposit. */
typedef struct s_node {
    registry_entry_t e;
    uint64_t first_lsn;          /* arrival order: the LSN of its first record */
    uint64_t indexed_login;      /* the login whose list it is on (0: none) */
    struct s_node *newer, *older;
} s_node_t;

struct registry_t {
    pthread_mutex_t lock;
    size_t max_deposits;
    zhashx_t *by_tx;             /* tx_id → s_node_t * (owned by entries[]) */
    s_node_t **entries;          /* arrival order */
    size_t count, cap;
    zhashx_t *by_login;          /* "login" → newest s_node_t * of that login */
    zhashx_t *links;             /* address key → s_link_t * (owned) */
    size_t open;                 /* deposits in memory in a state that is not final: what max_deposits bounds */
    uint64_t applied_lsn;        /* the highest LSN applied (a snapshot's LSN once saved or loaded) */
    char dir[512];               /* journal directory whose finished/ holds the index ("": none, keep all) */
    int quiet;                   /* registry_set_quiet: a snapshot writer's own copy */
    findex_t *base;              /* finished deposits not in memory (NULL: none) */
    uint64_t *superseded;        /* base locs of deposits in memory again (sorted): base's copy is stale */
    size_t nsup, capsup;
    atomic_int failed;
    int replaying;               /* apply from the journal: report mismatches */
    int (*also)(void *arg, const record_t *r, uint64_t lsn);   /* registry_replay_also */
    void *also_arg;
    totals_t totals;             /* every deposit's state and credited amounts, evicted ones too */
};

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Bounded copy; dst always terminated. */
static void s_copy(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strnlen(src, cap - 1) : 0;
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
}
#define S_COPY(dst, src) s_copy((dst), sizeof(dst), (src))

/* The key an address is linked under: EVM hex addresses ("0x...") compare case-insensitively
 * (checksummed and lower-case spellings are one address); every other chain's are exact. */
static void s_addr_key(const char *address, char out[128])
{
    s_copy(out, 128, address);
    if (out[0] == '0' && (out[1] == 'x' || out[1] == 'X'))
        for (char *p = out; *p; p++)
            *p = (char) tolower((unsigned char) *p);
}

static void s_link_free(void **item)
{
    free(*item);
    *item = NULL;
}

registry_t *registry_new(size_t max_deposits)
{
    registry_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    pthread_mutex_init(&self->lock, NULL);
    self->max_deposits = max_deposits ? max_deposits : 1;
    self->by_tx = zhashx_new();
    self->links = zhashx_new();
    self->by_login = zhashx_new();
    if (!self->by_tx || !self->links || !self->by_login) {
        registry_destroy(&self);
        return NULL;
    }
    zhashx_set_destructor(self->links, s_link_free);
    return self;
}

void registry_set_dir(registry_t *self, const char *dir)
{
    pthread_mutex_lock(&self->lock);
    s_copy(self->dir, sizeof self->dir, dir);
    pthread_mutex_unlock(&self->lock);
}

void registry_set_quiet(registry_t *self)
{
    pthread_mutex_lock(&self->lock);
    self->quiet = 1;
    pthread_mutex_unlock(&self->lock);
}

size_t registry_open_count(registry_t *self)
{
    pthread_mutex_lock(&self->lock);
    size_t n = self->open;
    pthread_mutex_unlock(&self->lock);
    return n;
}

void registry_destroy(registry_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    registry_t *self = *self_p;
    zhashx_destroy(&self->by_tx);
    zhashx_destroy(&self->links);
    zhashx_destroy(&self->by_login);
    findex_close(&self->base);
    free(self->superseded);
    for (size_t i = 0; i < self->count; i++)
        free(self->entries[i]);
    free(self->entries);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

/* ---- applying records (replay and live) ------------------------------------------------------- */

static registry_entry_t *s_find(registry_t *self, const char *tx_id)
{
    s_node_t *n = zhashx_lookup(self->by_tx, tx_id);
    return n ? &n->e : NULL;
}

static void s_login_key(uint64_t login, char key[24])
{
    snprintf(key, 24, "%llu", (unsigned long long) login);
}

/* Moves n onto the list of the login it now belongs to, keeping each list newest first (by arrival). */
static void s_index(registry_t *self, s_node_t *n)
{
    uint64_t login = n->e.view.login;
    if (login == n->indexed_login)
        return;
    char key[24];
    if (n->indexed_login) {   /* off the old list */
        if (n->newer)
            n->newer->older = n->older;
        else {
            s_login_key(n->indexed_login, key);
            if (n->older)
                zhashx_update(self->by_login, key, n->older);
            else
                zhashx_delete(self->by_login, key);
        }
        if (n->older)
            n->older->newer = n->newer;
        n->newer = n->older = NULL;
    }
    n->indexed_login = login;
    if (!login)
        return;
    s_login_key(login, key);
    s_node_t *head = zhashx_lookup(self->by_login, key);
    if (!head || head->first_lsn < n->first_lsn) {   /* the newest of its login: the usual case */
        n->older = head;
        if (head)
            head->newer = n;
        zhashx_update(self->by_login, key, n);
        return;
    }
    s_node_t *at = head;                 /* an older deposit given a login later: find its place */
    while (at->older && at->older->first_lsn > n->first_lsn)
        at = at->older;
    n->newer = at;
    n->older = at->older;
    if (at->older)
        at->older->newer = n;
    at->older = n;
}

static int s_final(const registry_entry_t *e)
{
    return deposit_state_is_final(e->view.state);
}

/* A new, empty entry for tx_id in state NONE, first recorded at first_lsn, at its place in arrival
 * order (the end, but for a deposit read back from the index); not yet on its login's list. NULL if
 * max_deposits unfinished deposits are held, or no memory. */
static s_node_t *s_new_node(registry_t *self, const char *tx_id, uint64_t first_lsn)
{
    if (self->count == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 256;
        s_node_t **grown = realloc(self->entries, cap * sizeof *grown);
        if (!grown)
            return NULL;
        self->entries = grown;
        self->cap = cap;
    }
    s_node_t *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    registry_entry_t *e = &n->e;
    S_COPY(e->view.tx_id, tx_id);
    e->view.state = DEPOSIT_NONE;
    e->view.confirmations = -1;
    e->view.threshold = -1;
    if (zhashx_insert(self->by_tx, e->view.tx_id, n) != 0) {
        free(n);
        return NULL;
    }
    n->first_lsn = first_lsn;
    size_t at = self->count;
    while (at > 0 && self->entries[at - 1]->first_lsn > first_lsn)
        at--;
    memmove(&self->entries[at + 1], &self->entries[at], (self->count - at) * sizeof *self->entries);
    self->entries[at] = n;
    self->count++;
    return n;
}

static registry_entry_t *s_create(registry_t *self, const char *tx_id, uint64_t first_lsn)
{
    if (self->open >= self->max_deposits)
        return NULL;
    s_node_t *n = s_new_node(self, tx_id, first_lsn);
    if (!n)
        return NULL;
    self->open++;   /* NONE is not final */
    return &n->e;
}

/* ---- finished deposits out of memory (the index) ------------------------------------------------ */

static void s_pickle_node(snap_pk_t *p, uint64_t *first_lsn, registry_entry_t *e);

static int s_loc_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

static int s_superseded(const registry_t *self, uint64_t loc)
{
    return self->nsup && bsearch(&loc, self->superseded, self->nsup, sizeof loc, s_loc_cmp) != NULL;
}

/* Records that the index's copy at loc is stale (the deposit is in memory again). 0 or -1. */
static int s_supersede(registry_t *self, uint64_t loc)
{
    if (s_superseded(self, loc))
        return 0;
    if (self->nsup == self->capsup) {
        size_t cap = self->capsup ? self->capsup * 2 : 64;
        uint64_t *grown = realloc(self->superseded, cap * sizeof *grown);
        if (!grown)
            return -1;
        self->superseded = grown;
        self->capsup = cap;
    }
    size_t at = self->nsup;
    while (at > 0 && self->superseded[at - 1] > loc)
        at--;
    memmove(&self->superseded[at + 1], &self->superseded[at], (self->nsup - at) * sizeof loc);
    self->superseded[at] = loc;
    self->nsup++;
    return 0;
}

/* Reads the entry the index holds at loc into *out. 0, or -1 (logged: a store is missing or damaged). */
static int s_read_evicted(registry_t *self, uint64_t loc, registry_entry_t *out, uint64_t *first_lsn)
{
    uint8_t *blob;
    size_t len;
    char err[300];
    if (findex_read(self->base, loc, &blob, &len, err, sizeof err) != 0) {
        log_error("registry.index_unreadable", "journal=%s loc=%llu reason=\"%s\"", self->dir,
                  (unsigned long long) loc, err);
        return -1;
    }
    snap_pk_t p;
    snap_pk_load_init(&p, blob, len);
    memset(out, 0, sizeof *out);
    s_pickle_node(&p, first_lsn, out);
    int bad = p.bad || p.pos != p.len;
    free(blob);
    if (bad)
        log_error("registry.index_unreadable", "journal=%s loc=%llu reason=\"the entry does not decode\"", self->dir,
                  (unsigned long long) loc);
    return bad ? -1 : 0;
}

/* Looks tx_id up among the finished deposits that left memory. A key hit is only a candidate: its
 * entry is read and the whole transaction id compared, so a new deposit whose hash collides with an
 * old one's is never taken for it. 1 with *out, *first_lsn and *loc if it is there; 0 if not; -1 if a
 * candidate cannot be read (then nobody can tell whether tx_id is new: the caller refuses for now). */
typedef struct {
    registry_t *self;
    const char *tx_id;
    registry_entry_t *out;
    uint64_t *first_lsn, *loc;
} s_find_t;

/* One candidate of s_find_evicted: 1 (it is tx_id), 0 (another id with the same key), -1 (unreadable). */
static int s_find_one(void *arg, uint64_t at)
{
    s_find_t *f = arg;
    if (s_superseded(f->self, at))
        return 0;
    if (s_read_evicted(f->self, at, f->out, f->first_lsn) != 0)
        return -1;
    if (strcmp(f->out->view.tx_id, f->tx_id) != 0)
        return 0;
    *f->loc = at;
    return 1;
}

static int s_find_evicted(registry_t *self, const char *tx_id, registry_entry_t *out, uint64_t *first_lsn,
                          uint64_t *loc)
{
    if (!self->base || !tx_id)
        return 0;
    s_find_t f = { self, tx_id, out, first_lsn, loc };
    int rc = findex_find(self->base, findex_hash(tx_id), s_find_one, &f);
    if (rc < 0)   /* "not there" would be a guess (a store's failure is logged by s_read_evicted) */
        log_error("registry.index_unreadable", "journal=%s tx_id=%s reason=\"the index cannot be read\"", self->dir,
                  tx_id);
    return rc;
}

/* Brings a deposit read from the index back into memory (something is about to be recorded for it),
 * at its place in arrival order; the index's copy is superseded. The entry, or NULL (no memory). */
static registry_entry_t *s_revive(registry_t *self, const registry_entry_t *old, uint64_t first_lsn, uint64_t loc)
{
    if (s_supersede(self, loc) != 0)
        return NULL;
    s_node_t *n = s_new_node(self, old->view.tx_id, first_lsn);
    if (!n)
        return NULL;
    n->e = *old;
    if (!s_final(&n->e))
        self->open++;
    s_index(self, n);
    return &n->e;
}

/* The in-memory entry of tx_id, brought back from the index if it is there. NULL if unknown, or (with
 * *unreadable set) if the index could not be read. */
static registry_entry_t *s_find_any(registry_t *self, const char *tx_id, int *unreadable)
{
    *unreadable = 0;
    registry_entry_t *e = s_find(self, tx_id);
    if (e || !self->base)
        return e;
    registry_entry_t *old = malloc(sizeof *old);
    uint64_t first_lsn = 0, loc = 0;
    int got = old ? s_find_evicted(self, tx_id, old, &first_lsn, &loc) : -1;
    if (got > 0 && !(e = s_revive(self, old, first_lsn, loc)))
        got = -1;
    *unreadable = got < 0;
    free(old);
    return e;
}

static void s_apply_deposit(registry_t *self, registry_entry_t *e, const record_t *r, uint64_t lsn)
{
    deposit_view_t *v = &e->view;
    if (self->replaying && v->state != r->from)
        log_warn("replay.mismatch", "tx=%s lsn=%llu state=%s record_from=%s record_to=%s", v->tx_id,
                 (unsigned long long) lsn, deposit_state_name(v->state), deposit_state_name(r->from),
                 deposit_state_name(r->to));
    int moved = v->state != r->to;
    v->state = r->to;
    if (r->status[0]) S_COPY(v->status, r->status);
    if (r->token_id[0]) S_COPY(v->token_id, r->token_id);
    if (r->chain_id[0]) S_COPY(v->chain_id, r->chain_id);
    if (r->address[0]) S_COPY(v->address, r->address);
    if (r->amount[0]) S_COPY(v->amount, r->amount);
    if (r->tx_hash[0]) S_COPY(v->tx_hash, r->tx_hash);
    if (r->confirmations >= 0) v->confirmations = r->confirmations;
    if (r->threshold >= 0) v->threshold = r->threshold;
    if (r->login) v->login = r->login;
    if (r->credit_minor) {
        v->credit_minor = r->credit_minor;
        v->digits = r->digits;
    }
    if (r->currency[0]) S_COPY(v->currency, r->currency);
    if (r->remainder[0]) S_COPY(e->remainder, r->remainder);
    if (r->ticket) v->ticket = r->ticket;
    if (moved || r->reason[0])
        S_COPY(v->reason, r->reason);   /* a new state's reason, or none */
    if (!v->created_ms)
        v->created_ms = r->time_ms;
    v->updated_ms = r->time_ms;
}

static void s_apply_attempt(registry_entry_t *e, const record_t *r)
{
    if (r->attempt > e->attempts)
        e->attempts = r->attempt;
    S_COPY(e->ref, r->ref);
    if (!e->first_attempt_ms)
        e->first_attempt_ms = r->time_ms;
    e->last_attempt_ms = r->time_ms;
    e->attempt_login = r->login ? r->login : e->view.login;
    e->view.updated_ms = r->time_ms;
    registry_tried_t *t = NULL;
    for (uint32_t i = 0; i < e->tried_count && !t; i++)
        if (e->tried[i].login == e->attempt_login)
            t = &e->tried[i];
    if (!t && e->tried_count == REGISTRY_MAX_LOGINS) {
        e->tried_overflow = 1;   /* the crediter never sends to one login more (it holds instead) */
        return;
    }
    if (!t) {
        t = &e->tried[e->tried_count++];
        t->login = e->attempt_login;
        t->first_ms = r->time_ms;
    }
    t->last_ms = r->time_ms;
    t->credit_minor = r->credit_minor ? r->credit_minor : e->view.credit_minor;
    t->digits = r->credit_minor ? r->digits : e->view.digits;
}

/* A repair lost records this deposit may have had, a credit attempt among them perhaps: from now on
 * it counts as having an attempt of unknown outcome, made at some time between its first record and
 * the repair (the marker's time), so the crediter reconciles with MT5 before any send and searches
 * that whole window. */
static void s_apply_history_gap(registry_entry_t *e, const record_t *r)
{
    e->history_gaps++;
    e->history_gap_ms = r->time_ms;
    if (!e->attempts)
        e->attempts = 1;
    int64_t from = e->view.created_ms && e->view.created_ms < r->time_ms ? e->view.created_ms : r->time_ms;
    if (!e->first_attempt_ms || from < e->first_attempt_ms)
        e->first_attempt_ms = from;
    if (r->time_ms > e->last_attempt_ms)
        e->last_attempt_ms = r->time_ms;
    if (r->ref[0])
        S_COPY(e->ref, r->ref);
}

/* Links address → login in memory; a replayed re-link to another login wins (it was journaled). */
static int s_link_locked(registry_t *self, const char *address, const char *chain_id, uint64_t login,
                         uint64_t lsn, int64_t time_ms)
{
    char key[128];
    s_addr_key(address, key);
    s_link_t *l = zhashx_lookup(self->links, key);
    if (l) {
        if (l->login != login)
            log_warn("replay.relink", "address=%s login=%llu was=%llu", key, (unsigned long long) login,
                     (unsigned long long) l->login);
        l->login = login;
        S_COPY(l->chain_id, chain_id);
        S_COPY(l->address, address);
        l->lsn = lsn;
        l->time_ms = time_ms;
        return 0;
    }
    if (zhashx_size(self->links) >= self->max_deposits)
        return -1;
    l = calloc(1, sizeof *l);
    if (!l)
        return -1;
    l->login = login;
    S_COPY(l->chain_id, chain_id);
    S_COPY(l->address, address);
    l->lsn = lsn;
    l->time_ms = time_ms;
    if (zhashx_insert(self->links, key, l) != 0) {
        free(l);
        return -1;
    }
    return 0;
}

/* An approval counts its admin once; any other action is an audit fact (the transition it caused is
 * its own record). */
static void s_apply_admin(registry_entry_t *e, const record_t *r)
{
    if (strcmp(r->action, "approve") != 0)
        return;
    for (uint32_t i = 0; i < e->approvals && i < DESK_MAX_APPROVERS; i++)
        if (strcmp(e->approvers[i], r->actor) == 0)
            return;
    if (e->approvals < DESK_MAX_APPROVERS)
        S_COPY(e->approvers[e->approvals], r->actor);
    e->approvals++;
}

/* The one place a record changes memory. -1 if a new deposit or link does not fit. */
static int s_apply_locked(registry_t *self, const record_t *r, uint64_t lsn)
{
    if (lsn > self->applied_lsn)
        self->applied_lsn = lsn;
    if (r->kind == RECORD_ADDRESS_LINK)
        return s_link_locked(self, r->address, r->chain_id, r->login, lsn, r->time_ms);
    if (!r->tx_id[0])
        return 0;
    int unreadable;
    registry_entry_t *e = s_find_any(self, r->tx_id, &unreadable);
    if (unreadable)
        return -1;
    if (!e) {
        if (r->kind != RECORD_DEPOSIT)
            return 0;   /* an attempt or notice for a deposit never seen: nothing to hang it on */
        e = s_create(self, r->tx_id, lsn);
        if (!e)
            return -1;
    }
    int was_open = !s_final(e);
    deposit_state_t before = e->view.state;
    switch (r->kind) {
    case RECORD_DEPOSIT: s_apply_deposit(self, e, r, lsn); break;
    case RECORD_CREDIT_ATTEMPT: s_apply_attempt(e, r); break;
    case RECORD_HISTORY_GAP: s_apply_history_gap(e, r); break;
    case RECORD_NOTICE_FAILED:
        e->notice_failed = 1;
        S_COPY(e->view.reason, r->reason);
        e->view.updated_ms = r->time_ms;
        break;
    case RECORD_ALERT: {
        int id = record_alert_from_name(r->alert);
        if (id >= 0)
            e->alerts_raised |= 1u << id;
        e->view.alert_count++;
        S_COPY(e->view.alert, r->alert);
        e->view.updated_ms = r->time_ms;
        break;
    }
    case RECORD_ADMIN_ACTION:
        s_apply_admin(e, r);
        break;
    default: break;
    }
    if (was_open && s_final(e))
        self->open--;
    else if (!was_open && !s_final(e))
        self->open++;
    if (lsn > e->last_lsn)
        e->last_lsn = lsn;
    totals_move(&self->totals, before, e->view.state, e->view.token_id, e->view.amount, r->time_ms);
    s_index(self, (s_node_t *) e);
    return 0;
}

int registry_apply(registry_t *self, const record_t *r, uint64_t lsn)
{
    pthread_mutex_lock(&self->lock);
    self->replaying = 1;
    int rc = s_apply_locked(self, r, lsn);
    self->replaying = 0;
    pthread_mutex_unlock(&self->lock);
    return rc;
}

void registry_replay_also(registry_t *self, int (*fn)(void *arg, const record_t *r, uint64_t lsn), void *arg)
{
    self->also = fn;
    self->also_arg = arg;
}

long registry_replay(registry_t *self, const char *dir, char *err, size_t errlen)
{
    journal_reader_t *rd = journal_reader_open(dir, 1, err, errlen);
    if (!rd)
        return -1;
    long applied = 0;
    journal_entry_t je;
    int rc;
    record_t *r = malloc(sizeof *r);
    if (!r) {
        journal_reader_destroy(&rd);
        snprintf(err, errlen, "no memory");
        return -1;
    }
    while ((rc = journal_reader_next(rd, &je)) == 1) {
        char why[128];
        if (record_decode(je.payload, je.len, r, why, sizeof why) != 0) {
            snprintf(err, errlen, "lsn %llu (%s at offset %llu): %s", (unsigned long long) je.lsn,
                     je.segment ? je.segment : "?", (unsigned long long) je.offset, why);
            rc = -2;
            break;
        }
        if (registry_apply(self, r, je.lsn) != 0 || (self->also && self->also(self->also_arg, r, je.lsn) != 0)) {
            snprintf(err, errlen, "lsn %llu: more than %zu deposits, links or withdrawals: raise KASA_MAX_DEPOSITS",
                     (unsigned long long) je.lsn, self->max_deposits);
            rc = -2;
            break;
        }
        applied++;
    }
    if (rc == -1)
        snprintf(err, errlen, "%s", journal_reader_error(rd));
    free(r);
    journal_reader_destroy(&rd);
    return rc == 0 ? applied : -1;
}

/* ---- snapshot section ------------------------------------------------------------------------------ */

/* The layout registry_save writes: bump it when the fields below change. registry_load reads it and
 * the older layouts s_layout_has names (a bump adds a case there). */
#define S_PICKLE_LAYOUT 3u

#define S_HAS_TOTALS 1   /* the running totals follow the links */

/* What a registry section of a layout registry_load reads holds beyond the head, the entries and the
 * links every one of them has; -1 for a layout it does not read (a newer kasa's). */
static int s_layout_has(uint32_t layout)
{
    switch (layout) {
    case 2: return 0;              /* before the running totals: rebuilt once, at load (s_totals_rebuild) */
    case 3: return S_HAS_TOTALS;
    default: return -1;
    }
}

/* Every field of an entry, in one order, for both directions (journal/snapshot.h). A field added to
 * registry_entry_t or deposit_view_t must be added here, or a start from a snapshot would lose it
 * (test_checkpoint proves start-from-snapshot equals start-from-journal). */
void registry_entry_pickle(snap_pk_t *p, registry_entry_t *e)
{
    deposit_view_t *v = &e->view;
    SNAP_PK_STR(p, v->tx_id);
    int state = (int) v->state;
    snap_pk_int(p, &state);
    if (state < 0 || state >= DEPOSIT_STATE_COUNT)
        p->bad = 1;
    v->state = (deposit_state_t) state;
    SNAP_PK_STR(p, v->status);
    snap_pk_i32(p, &v->confirmations);
    snap_pk_i32(p, &v->threshold);
    SNAP_PK_STR(p, v->token_id);
    SNAP_PK_STR(p, v->chain_id);
    SNAP_PK_STR(p, v->address);
    SNAP_PK_STR(p, v->amount);
    SNAP_PK_STR(p, v->tx_hash);
    snap_pk_u64(p, &v->login);
    snap_pk_i64(p, &v->credit_minor);
    snap_pk_i32(p, &v->digits);
    SNAP_PK_STR(p, v->currency);
    snap_pk_u64(p, &v->ticket);
    SNAP_PK_STR(p, v->reason);
    snap_pk_i64(p, &v->created_ms);
    snap_pk_i64(p, &v->updated_ms);
    snap_pk_u32(p, &v->alert_count);
    SNAP_PK_STR(p, v->alert);
    snap_pk_u32(p, &e->attempts);
    SNAP_PK_STR(p, e->ref);
    snap_pk_i64(p, &e->first_attempt_ms);
    snap_pk_i64(p, &e->last_attempt_ms);
    snap_pk_u64(p, &e->attempt_login);
    snap_pk_u32(p, &e->tried_count);
    if (e->tried_count > REGISTRY_MAX_LOGINS) {
        p->bad = 1;
        e->tried_count = 0;
    }
    for (uint32_t i = 0; i < e->tried_count; i++) {
        registry_tried_t *t = &e->tried[i];
        snap_pk_u64(p, &t->login);
        snap_pk_i64(p, &t->credit_minor);
        snap_pk_i32(p, &t->digits);
        snap_pk_i64(p, &t->first_ms);
        snap_pk_i64(p, &t->last_ms);
    }
    snap_pk_int(p, &e->tried_overflow);
    SNAP_PK_STR(p, e->remainder);
    snap_pk_int(p, &e->notice_failed);
    snap_pk_u32(p, &e->alerts_raised);
    snap_pk_u32(p, &e->history_gaps);
    snap_pk_i64(p, &e->history_gap_ms);
    snap_pk_u32(p, &e->approvals);
    for (uint32_t i = 0; i < e->approvals && i < DESK_MAX_APPROVERS; i++)
        SNAP_PK_STR(p, e->approvers[i]);
    snap_pk_u64(p, &e->last_lsn);
}

/* An entry with its arrival (first LSN): what a section and an index store hold per deposit. */
static void s_pickle_node(snap_pk_t *p, uint64_t *first_lsn, registry_entry_t *e)
{
    snap_pk_u64(p, first_lsn);
    registry_entry_pickle(p, e);
}

static int s_strptr_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* What a registry section says before its entries: the index of finished deposits it stands on. */
typedef struct {
    uint32_t layout;
    uint64_t applied_lsn;
    uint64_t idx_lsn;    /* DIR/finished/<idx_lsn>.idx, 0: none */
    uint64_t idx_count;
    uint32_t idx_crc;
} s_head_t;

static void s_pickle_head(snap_pk_t *p, s_head_t *h)
{
    snap_pk_u32(p, &h->layout);
    snap_pk_u64(p, &h->applied_lsn);
    snap_pk_u64(p, &h->idx_lsn);
    snap_pk_u64(p, &h->idx_count);
    snap_pk_u32(p, &h->idx_crc);
}

/* Writes the index for a snapshot of this registry at its applied LSN: the base's deposits (less the
 * superseded) and every finished deposit in memory. *h gets its name. 0, or -1 (logged). Under the lock. */
static int s_save_index(registry_t *self, s_head_t *h)
{
    size_t finished = 0;
    for (size_t i = 0; i < self->count; i++)
        finished += s_final(&self->entries[i]->e);
    if (!finished && !self->nsup) {   /* nothing changed: stand on the same index */
        h->idx_lsn = findex_lsn(self->base);
        h->idx_count = findex_count(self->base);
        h->idx_crc = findex_crc(self->base);
        return 0;
    }
    char err[400];
    findex_writer_t *w = findex_write_begin(self->dir, self->applied_lsn, self->base, err, sizeof err);
    int rc = w ? 0 : -1;
    for (size_t i = 0; w && i < self->nsup; i++)
        findex_write_drop(w, self->superseded[i]);
    registry_entry_t *tmp = malloc(sizeof *tmp);
    if (!tmp) {
        snprintf(err, sizeof err, "no memory");
        rc = -1;
    }
    for (size_t i = 0; rc == 0 && i < self->count; i++) {
        s_node_t *n = self->entries[i];
        if (!s_final(&n->e))
            continue;
        snap_pk_t p;
        snap_pk_save_init(&p);
        *tmp = n->e;   /* the save direction reads its fields; a copy keeps this walk read-only */
        uint64_t first_lsn = n->first_lsn;
        s_pickle_node(&p, &first_lsn, tmp);
        if (p.bad || findex_write_add(w, findex_hash(n->e.view.tx_id), n->e.view.login, n->first_lsn, p.buf, p.len,
                                      err, sizeof err) != 0) {
            if (p.bad)
                snprintf(err, sizeof err, "deposit %s does not encode", n->e.view.tx_id);
            rc = -1;
        }
        snap_pk_free(&p);
    }
    free(tmp);
    if (rc == 0) {
        rc = findex_write_commit(&w, &h->idx_count, &h->idx_crc, err, sizeof err);
        h->idx_lsn = self->applied_lsn;
    }
    findex_write_abort(&w);
    if (rc != 0)
        log_error("snapshot.index_failed", "journal=%s lsn=%llu reason=\"%s\"", self->dir,
                  (unsigned long long) self->applied_lsn, err);
    return rc;
}

void registry_totals(registry_t *self, totals_t *out)
{
    pthread_mutex_lock(&self->lock);
    *out = self->totals;
    pthread_mutex_unlock(&self->lock);
}

int registry_save(registry_t *self, snap_pk_t *p)
{
    return registry_save_layout(self, p, S_PICKLE_LAYOUT);
}

int registry_save_layout(registry_t *self, snap_pk_t *p, uint32_t layout)
{
    int has = s_layout_has(layout);
    if (has < 0)
        return -1;
    pthread_mutex_lock(&self->lock);
    s_head_t h = { layout, self->applied_lsn, 0, 0, 0 };
    int indexed = self->dir[0] != '\0';
    if (indexed && s_save_index(self, &h) != 0)
        p->bad = 1;
    s_pickle_head(p, &h);
    uint64_t count = 0;
    for (size_t i = 0; i < self->count; i++)
        count += !indexed || !s_final(&self->entries[i]->e);
    snap_pk_u64(p, &count);
    for (size_t i = 0; i < self->count && !p->bad; i++) {   /* arrival order: the listings' order */
        s_node_t *n = self->entries[i];
        if (!indexed || !s_final(&n->e))
            s_pickle_node(p, &n->first_lsn, &n->e);
    }
    /* links by address: the same registry always encodes to the same bytes */
    uint64_t links = zhashx_size(self->links);
    snap_pk_u64(p, &links);
    size_t nkeys = 0;
    const char **keys = links ? malloc(links * sizeof *keys) : NULL;
    if (links && !keys)
        p->bad = 1;
    for (s_link_t *l = keys ? zhashx_first(self->links) : NULL; l; l = zhashx_next(self->links))
        keys[nkeys++] = zhashx_cursor(self->links);
    if (nkeys > 1)
        qsort(keys, nkeys, sizeof *keys, s_strptr_cmp);
    for (size_t i = 0; i < nkeys && !p->bad; i++) {
        s_link_t *l = zhashx_lookup(self->links, keys[i]);
        SNAP_PK_STR(p, l->address);   /* as linked: its key is made from it again */
        SNAP_PK_STR(p, l->chain_id);
        snap_pk_u64(p, &l->login);
        snap_pk_u64(p, &l->lsn);
        snap_pk_i64(p, &l->time_ms);
    }
    free(keys);
    if (has & S_HAS_TOTALS)
        totals_pickle(p, &self->totals);
    pthread_mutex_unlock(&self->lock);
    return p->bad ? -1 : 0;
}

/* The index h names, opened and checked against what the section says of it. NULL with a reason. */
static findex_t *s_open_index(const registry_t *self, const s_head_t *h, char *err, size_t errlen)
{
    if (!self->dir[0]) {
        snprintf(err, errlen, "the snapshot stands on an index of finished deposits, and no journal directory "
                 "was given to read it from");
        return NULL;
    }
    findex_t *x = findex_open(self->dir, h->idx_lsn, err, errlen);
    if (x && (findex_count(x) != h->idx_count || findex_crc(x) != h->idx_crc)) {
        snprintf(err, errlen, "the index of finished deposits %llu is not the one the snapshot names",
                 (unsigned long long) h->idx_lsn);
        findex_close(&x);
    }
    return x;
}

/* When a deposit in a credited state was credited, as far as its entry tells: its last credit
 * attempt (the record just before the credit's own), or without one its last change. A credit whose
 * attempt and result fall either side of midnight UTC counts on the attempt's day. */
static int64_t s_credited_ms(const registry_entry_t *e)
{
    return e->last_attempt_ms > 0 ? e->last_attempt_ms : e->view.updated_ms;
}

static void s_rebuild_add(totals_rebuild_t *rb, const registry_entry_t *e, uint64_t first_lsn)
{
    totals_rebuild_add(rb, e->view.state, e->view.token_id, e->view.amount, s_credited_ms(e), first_lsn);
}

static void s_rebuild_memory(registry_t *self, totals_rebuild_t *rb)
{
    memset(rb, 0, sizeof *rb);
    for (size_t i = 0; i < self->count; i++)
        s_rebuild_add(rb, &self->entries[i]->e, self->entries[i]->first_lsn);
}

/* What a rebuild of the totals carries: into rb, each stored entry decoded into tmp. */
typedef struct {
    registry_t *self;
    totals_rebuild_t *rb;
    registry_entry_t *tmp;
    int check;                   /* count a stored entry only if the index names its loc */
    uint64_t store_no;           /* the store being read: its number in the index's list */
    uint64_t counted;
    int unreadable;
} s_rebuild_t;

static int s_loc_is(void *arg, uint64_t loc)
{
    return loc == *(const uint64_t *) arg;
}

static int s_rebuild_stored(void *arg, uint64_t off, const uint8_t *blob, size_t len)
{
    s_rebuild_t *r = arg;
    snap_pk_t p;
    snap_pk_load_init(&p, blob, len);
    memset(r->tmp, 0, sizeof *r->tmp);
    uint64_t first_lsn = 0, loc = r->store_no << FINDEX_LOC_SHIFT | off;
    s_pickle_node(&p, &first_lsn, r->tmp);
    if (p.bad || p.pos != p.len)
        return 1;   /* stops the walk: the entry does not decode */
    if (r->check) {   /* a copy a later snapshot superseded is in no run's arrays (or dropped there) */
        int named = findex_find(r->self->base, findex_hash(r->tmp->view.tx_id), s_loc_is, &loc);
        if (named < 0) {
            r->unreadable = 1;
            return 2;
        }
        if (!named)
            return 0;
    }
    s_rebuild_add(r->rb, r->tmp, first_lsn);
    r->counted++;
    return 0;
}

/* The index's deposits into r->rb, its stores read through in order, a buffer at a time; with
 * r->check each entry counted only if the index names it. 1 when what was counted is exactly the
 * index's deposits; 0 when the stores held more (copies a later snapshot superseded: read them again
 * with r->check); -1 with a reason. */
static int s_rebuild_from_stores(registry_t *self, s_rebuild_t *r, char *err, size_t errlen)
{
    r->counted = 0;
    for (size_t i = 0; i < findex_store_count(self->base); i++) {
        uint64_t entries = 0;
        r->store_no = i;
        int rc = findex_store_each(self->dir, findex_store_lsn(self->base, i), s_rebuild_stored, r, &entries, err,
                                   errlen);
        if (rc > 0)
            snprintf(err, errlen, "%s of store %llu of the index of finished deposits",
                     r->unreadable ? "the index cannot be read for an entry" : "an entry does not decode",
                     (unsigned long long) findex_store_lsn(self->base, i));
        if (rc != 0)
            return -1;
    }
    return r->counted == findex_count(self->base) && !self->nsup;
}

/* The running totals rebuilt from every deposit, in memory and in the index (a section of a layout
 * that did not carry them), in bounded memory whatever the index holds: the index's stores read
 * through in order; when they hold more than its deposits (copies a later snapshot superseded), read
 * again counting only the entries the index names. 0, or -1 with a reason (the index or a store
 * cannot be read). Under the lock, at load. */
static int s_totals_rebuild(registry_t *self, char *err, size_t errlen)
{
    s_rebuild_t r = { .self = self, .rb = calloc(1, sizeof *r.rb), .tmp = malloc(sizeof *r.tmp) };
    int rc = r.rb && r.tmp ? 0 : -1;
    if (rc != 0)
        snprintf(err, errlen, "no memory");
    const char *how = "memory";
    if (rc == 0 && self->base) {
        s_rebuild_memory(self, r.rb);
        int whole = s_rebuild_from_stores(self, &r, err, errlen);
        how = "stores";
        if (whole == 0 && !r.check) {   /* superseded copies among them: again, each checked */
            s_rebuild_memory(self, r.rb);
            r.check = 1;
            how = "stores, each entry checked against the index";
            whole = s_rebuild_from_stores(self, &r, err, errlen);
        }
        if (whole == 0)
            snprintf(err, errlen, "the stores of the index of finished deposits %llu hold %llu of its %llu deposits",
                     (unsigned long long) findex_lsn(self->base), (unsigned long long) r.counted,
                     (unsigned long long) findex_count(self->base));
        rc = whole == 1 ? 0 : -1;
    } else if (rc == 0) {
        s_rebuild_memory(self, r.rb);
    }
    if (rc == 0) {
        totals_rebuild_end(r.rb, &self->totals);
        log_info("registry.totals_rebuilt", "journal=%s in_memory=%zu indexed=%llu read=\"%s\" reason=\"a snapshot "
                 "section written before the running totals were carried in it\"", self->dir, self->count,
                 (unsigned long long) findex_count(self->base), how);
    }
    free(r.tmp);
    free(r.rb);
    return rc;
}

int registry_load(registry_t *self, snap_pk_t *p, char *err, size_t errlen)
{
    pthread_mutex_lock(&self->lock);
    s_head_t h = { 0 };
    uint64_t count = 0, links = 0;
    int rc = -1;
    s_pickle_head(p, &h);
    snap_pk_u64(p, &count);
    registry_entry_t *tmp = malloc(sizeof *tmp);
    int has = s_layout_has(h.layout);
    if (!tmp || has < 0 || self->count || self->base) {
        snprintf(err, errlen, !tmp ? "no memory" : has < 0 ? "registry layout %u, not one this kasa reads (2 to %u)"
                 : "registry not empty", h.layout, S_PICKLE_LAYOUT);
        goto out;
    }
    if (h.idx_lsn && !(self->base = s_open_index(self, &h, err, errlen)))
        goto out;
    self->applied_lsn = h.applied_lsn;
    for (uint64_t i = 0; i < count && !p->bad; i++) {
        memset(tmp, 0, sizeof *tmp);
        uint64_t first_lsn = 0;
        s_pickle_node(p, &first_lsn, tmp);
        registry_entry_t *e = p->bad || s_find(self, tmp->view.tx_id) ? NULL
                              : s_create(self, tmp->view.tx_id, first_lsn);
        if (!e) {
            snprintf(err, errlen, p->bad ? "deposit %llu does not decode" : "deposit %llu: duplicate, or more than "
                     "%zu unfinished deposits: raise KASA_MAX_DEPOSITS", (unsigned long long) i, self->max_deposits);
            goto out;
        }
        *e = *tmp;
        if (s_final(e))
            self->open--;
        s_index(self, (s_node_t *) e);
    }
    snap_pk_u64(p, &links);
    for (uint64_t i = 0; i < links && !p->bad; i++) {
        char address[128], chain[24];
        uint64_t login = 0, lsn = 0;
        int64_t time_ms = 0;
        SNAP_PK_STR(p, address);
        SNAP_PK_STR(p, chain);
        snap_pk_u64(p, &login);
        snap_pk_u64(p, &lsn);
        snap_pk_i64(p, &time_ms);
        if (!p->bad && s_link_locked(self, address, chain, login, lsn, time_ms) != 0) {
            snprintf(err, errlen, "more than %zu address links: raise KASA_MAX_DEPOSITS", self->max_deposits);
            goto out;
        }
    }
    if (has & S_HAS_TOTALS)
        totals_pickle(p, &self->totals);
    if (p->bad || p->pos != p->len) {
        snprintf(err, errlen, "the registry section does not decode");
        goto out;
    }
    if (!(has & S_HAS_TOTALS) && s_totals_rebuild(self, err, errlen) != 0)
        goto out;
    rc = 0;
out:
    free(tmp);
    pthread_mutex_unlock(&self->lock);
    return rc;
}

/* Takes n out of memory (its login's list, the table; the caller closes its slot in arrival order);
 * frees it. Under the lock. */
static void s_evict(registry_t *self, s_node_t *n)
{
    n->e.view.login = 0;
    s_index(self, n);   /* off its login's list */
    zhashx_delete(self->by_tx, n->e.view.tx_id);
    if (!s_final(&n->e))
        self->open--;
    free(n);
}

int registry_forget_finished(registry_t *self, uint64_t snapshot_lsn, char *err, size_t errlen)
{
    if (!self->dir[0]) {
        snprintf(err, errlen, "no journal directory: finished deposits stay in memory");
        return -1;
    }
    snapshot_t *snap = snapshot_open(self->dir, snapshot_lsn, err, errlen);
    if (!snap)
        return -1;
    const uint8_t *content;
    uint64_t len;
    s_head_t h = { 0 };
    findex_t *x = NULL;
    if (snapshot_section(snap, "registry", &content, &len) != 0) {
        snprintf(err, errlen, "snapshot %llu has no registry section", (unsigned long long) snapshot_lsn);
    } else {
        snap_pk_t p;
        snap_pk_load_init(&p, content, (size_t) len);
        s_pickle_head(&p, &h);
        if (p.bad || s_layout_has(h.layout) < 0)
            snprintf(err, errlen, "snapshot %llu: registry layout %u, not one this kasa reads (2 to %u)",
                     (unsigned long long) snapshot_lsn, h.layout, S_PICKLE_LAYOUT);
        else if (h.idx_lsn)
            x = s_open_index(self, &h, err, errlen);
    }
    snapshot_close(&snap);
    if (!x)
        return h.idx_lsn || s_layout_has(h.layout) < 0 ? -1 : 0;   /* no index: nothing had finished */
    registry_entry_t *tmp = malloc(sizeof *tmp);
    if (!tmp) {
        findex_close(&x);
        snprintf(err, errlen, "no memory");
        return -1;
    }
    pthread_mutex_lock(&self->lock);
    findex_t *old = self->base;
    uint64_t *old_sup = self->superseded;
    size_t old_nsup = self->nsup, old_capsup = self->capsup;
    self->base = x;
    self->superseded = NULL;
    self->nsup = self->capsup = 0;
    int rc = 0;
    /* First what stays: a deposit here that changed since the snapshot while the index holds an
     * older copy of it makes that copy stale. */
    for (size_t i = 0; i < self->count && rc == 0; i++) {
        s_node_t *n = self->entries[i];
        uint64_t first_lsn, loc;
        if (n->first_lsn > snapshot_lsn || n->e.last_lsn <= snapshot_lsn)
            continue;   /* arrived after it (not in its index), or unchanged since (in it only if finished) */
        int got = s_find_evicted(self, n->e.view.tx_id, tmp, &first_lsn, &loc);
        if (got < 0 || (got > 0 && s_supersede(self, loc) != 0)) {
            snprintf(err, errlen, "cannot read the index of finished deposits %llu back",
                     (unsigned long long) h.idx_lsn);
            rc = -1;
        }
    }
    size_t evicted = 0;
    if (rc != 0) {   /* keep standing on the old index, as before */
        free(self->superseded);
        self->base = old;
        self->superseded = old_sup;
        self->nsup = old_nsup;
        self->capsup = old_capsup;
        old = x;
    } else {
        free(old_sup);
        size_t kept = 0;
        for (size_t i = 0; i < self->count; i++) {   /* then what leaves: in the index as it is now */
            s_node_t *n = self->entries[i];
            if (n->first_lsn <= snapshot_lsn && n->e.last_lsn <= snapshot_lsn && s_final(&n->e)) {
                s_evict(self, n);
                evicted++;
            } else {
                self->entries[kept++] = n;
            }
        }
        self->count = kept;
    }
    pthread_mutex_unlock(&self->lock);
    free(tmp);
    findex_close(&old);
    if (rc == 0 && !self->quiet)
        log_info("registry.finished_forgotten", "journal=%s snapshot_lsn=%llu evicted=%zu indexed=%llu",
                 self->dir, (unsigned long long) snapshot_lsn, evicted, (unsigned long long) h.idx_count);
    return rc;
}

/* ---- live commits ------------------------------------------------------------------------------ */

int registry_failed(registry_t *self)
{
    return atomic_load(&self->failed);
}

/* Marks the registry failed (logs event=pipeline.failed once). */
static void s_set_failed(registry_t *self, const char *why)
{
    if (atomic_exchange(&self->failed, 1) == 0)
        log_error("pipeline.failed", "reason=\"%s\" action=\"refusing every new transition; restart kasa\"",
                  why ? why : "append failed");
}

/* Waits for lsn to be durable; marks the registry failed if it cannot be. 0 or -1. */
static int s_wait(registry_t *self, journal_t *journal, uint64_t lsn)
{
    if (!lsn || !journal)
        return 0;
    if (journal_wait(journal, lsn) == 0)
        return 0;
    s_set_failed(self, "journal_wait failed");
    return -1;
}

/* Fills what the event does not bring from the entry, so every record stands on its own. */
static void s_complete(record_t *r, const registry_entry_t *e)
{
    const deposit_view_t *v = &e->view;
    if (!r->status[0]) S_COPY(r->status, v->status);
    if (r->confirmations < 0) r->confirmations = v->confirmations;
    if (r->threshold < 0) r->threshold = v->threshold;
    if (!r->token_id[0]) S_COPY(r->token_id, v->token_id);
    if (!r->chain_id[0]) S_COPY(r->chain_id, v->chain_id);
    if (!r->address[0]) S_COPY(r->address, v->address);
    if (!r->amount[0]) S_COPY(r->amount, v->amount);
    if (!r->tx_hash[0]) S_COPY(r->tx_hash, v->tx_hash);
    if (!r->login) r->login = v->login;
    if (!r->credit_minor && v->credit_minor) {
        r->credit_minor = v->credit_minor;
        r->digits = v->digits;
    }
    if (!r->currency[0]) S_COPY(r->currency, v->currency);
    if (!r->remainder[0]) S_COPY(r->remainder, e->remainder);
    if (!r->ticket) r->ticket = v->ticket;
}

/* Encodes r and submits it: its LSN, or 0 (then the registry is failed). Under the lock. */
static uint64_t s_submit_locked(registry_t *self, journal_t *journal, const record_t *r,
                                uint8_t **bytes, size_t *len, char *err, size_t errlen)
{
    if (record_encode(r, bytes, len, err, errlen) != 0)
        return 0;   /* a record we cannot encode is our bug, not the journal's: not failed */
    uint64_t lsn = journal_submit(journal, *bytes, *len);
    if (!lsn) {
        free(*bytes);
        *bytes = NULL;
        snprintf(err, errlen, "journal refused the record");
        s_set_failed(self, "journal_submit failed");
    }
    return lsn;
}

static void s_log_transition(const record_t *r, uint64_t lsn)
{
    char event[48];
    snprintf(event, sizeof event, "deposit.%s", deposit_state_name(r->to));
    for (char *p = event; *p; p++)
        *p = (char) tolower((unsigned char) *p);
    log_level_t level = r->to == DEPOSIT_HELD ? LOG_WARN : LOG_INFO;
    if (r->reason[0])
        log_event(level, event, "tx=%s login=%llu amount=%s token=%s from=%s lsn=%llu reason=\"%s\"", r->tx_id,
                  (unsigned long long) r->login, r->amount, r->token_id, deposit_state_name(r->from),
                  (unsigned long long) lsn, r->reason);
    else if (r->to == DEPOSIT_PENDING)
        log_event(level, event, "tx=%s login=%llu amount=%s token=%s confirmations=%d/%d lsn=%llu", r->tx_id,
                  (unsigned long long) r->login, r->amount, r->token_id, r->confirmations, r->threshold,
                  (unsigned long long) lsn);
    else if (r->to == DEPOSIT_CREDITED)
        log_event(level, event, "tx=%s login=%llu amount=%s token=%s credit_minor=%lld digits=%d ticket=%llu lsn=%llu",
                  r->tx_id, (unsigned long long) r->login, r->amount, r->token_id, (long long) r->credit_minor,
                  r->digits, (unsigned long long) r->ticket, (unsigned long long) lsn);
    else
        log_event(level, event, "tx=%s login=%llu amount=%s token=%s from=%s lsn=%llu", r->tx_id,
                  (unsigned long long) r->login, r->amount, r->token_id, deposit_state_name(r->from),
                  (unsigned long long) lsn);
}

registry_result_t registry_commit(registry_t *self, journal_t *journal, record_t *r, unsigned *effects,
                                  uint8_t **bytes, size_t *len, char *err, size_t errlen)
{
    uint64_t lsn = 0;
    registry_result_t res = registry_commit_begin(self, journal, r, effects, bytes, len, &lsn, err, errlen);
    if (lsn)
        res = registry_commit_end(self, r, res, lsn, journal_wait(journal, lsn), bytes, err, errlen);
    return res;
}

registry_result_t registry_commit_end(registry_t *self, const record_t *r, registry_result_t res, uint64_t lsn,
                                      int durable_rc, uint8_t **bytes, char *err, size_t errlen)
{
    if (durable_rc != 0) {
        s_set_failed(self, "journal_wait failed");
        if (bytes) {
            free(*bytes);
            *bytes = NULL;
        }
        snprintf(err, errlen, res == REGISTRY_MOVED ? "journal failed: the record is not durable"
                                                    : "journal failed: not accepting");
        return REGISTRY_FAILED;
    }
    if (res == REGISTRY_MOVED)
        s_log_transition(r, lsn);
    return res;
}

registry_result_t registry_commit_begin(registry_t *self, journal_t *journal, record_t *r, unsigned *effects,
                                        uint8_t **bytes, size_t *len, uint64_t *wait_lsn, char *err, size_t errlen)
{
    *wait_lsn = 0;
    uint8_t *buf = NULL;
    size_t buf_len = 0;
    unsigned fx_dummy;
    if (!effects)
        effects = &fx_dummy;
    *effects = DEPOSIT_EFFECT_NONE;
    if (bytes)
        *bytes = NULL;
    if (!r->time_ms)
        r->time_ms = s_now_ms();
    r->kind = RECORD_DEPOSIT;

    pthread_mutex_lock(&self->lock);
    if (atomic_load(&self->failed)) {
        pthread_mutex_unlock(&self->lock);
        snprintf(err, errlen, "journal failed: not accepting");
        return REGISTRY_FAILED;
    }
    registry_entry_t *e = s_find(self, r->tx_id);
    /* Not in memory: it may be a finished deposit that left it (a repeat of a webhook answered long
     * ago). Its copy in the index is durable (a snapshot holds it): no wait before answering. */
    registry_entry_t *old = NULL;
    uint64_t old_first = 0, old_loc = 0;
    if (!e && self->base) {
        int got = (old = malloc(sizeof *old)) ? s_find_evicted(self, r->tx_id, old, &old_first, &old_loc) : -1;
        if (got <= 0) {
            free(old);
            old = NULL;
        }
        if (got < 0) {
            pthread_mutex_unlock(&self->lock);
            snprintf(err, errlen, "the index of finished deposits cannot be read: cannot tell whether %s is new",
                     r->tx_id);
            return REGISTRY_FAILED;   /* not marked failed: the webhook gets 503 and Cobo retries */
        }
    }
    const registry_entry_t *known = e ? e : old;
    deposit_state_t from = known ? known->view.state : DEPOSIT_NONE;
    deposit_step_t step = deposit_step(from, r->event);
    *effects = step.effects;
    int update_only = step.outcome == DEPOSIT_STEP_MOVE && step.to == from;
    if (update_only && !(known && r->confirmations > known->view.confirmations))
        step.outcome = DEPOSIT_STEP_SAME;   /* a self-move journals only rising confirmations */
    if (old && step.outcome == DEPOSIT_STEP_MOVE && !(e = s_revive(self, old, old_first, old_loc))) {
        pthread_mutex_unlock(&self->lock);
        free(old);
        snprintf(err, errlen, "no memory");
        return REGISTRY_FAILED;
    }
    free(old);

    if (step.outcome != DEPOSIT_STEP_MOVE) {
        uint64_t lsn = e ? e->last_lsn : 0;
        pthread_mutex_unlock(&self->lock);
        if (step.outcome == DEPOSIT_STEP_ILLEGAL)
            snprintf(err, errlen, "%s not allowed in state %s", deposit_event_name(r->event),
                     deposit_state_name(from));
        /* Never answer on the strength of a transition that is not yet on disk: the caller waits
         * for lsn (registry_commit_end). */
        *wait_lsn = journal ? lsn : 0;
        return step.outcome == DEPOSIT_STEP_ILLEGAL ? REGISTRY_ILLEGAL : REGISTRY_SAME;
    }

    if (!e && self->open >= self->max_deposits) {
        pthread_mutex_unlock(&self->lock);
        snprintf(err, errlen, "too many unfinished deposits (%zu): raise KASA_MAX_DEPOSITS", self->max_deposits);
        return REGISTRY_FULL;
    }
    r->from = from;
    r->to = step.to;
    if (e)
        s_complete(r, e);
    uint64_t lsn = s_submit_locked(self, journal, r, &buf, &buf_len, err, errlen);
    if (!lsn) {
        pthread_mutex_unlock(&self->lock);
        return REGISTRY_FAILED;
    }
    /* Reserved: a concurrent duplicate now sees the new state and waits for lsn. */
    if (s_apply_locked(self, r, lsn) != 0) {
        /* Cannot happen (capacity was checked under this lock); if it did, the journal now holds a
         * record memory lacks: stop rather than diverge. */
        pthread_mutex_unlock(&self->lock);
        free(buf);
        s_set_failed(self, "registry apply failed");
        snprintf(err, errlen, "registry full");
        return REGISTRY_FAILED;
    }
    pthread_mutex_unlock(&self->lock);

    *wait_lsn = lsn;
    if (bytes) {
        *bytes = buf;
        *len = buf_len;
    } else {
        free(buf);
    }
    return REGISTRY_MOVED;
}

registry_result_t registry_append(registry_t *self, journal_t *journal, record_t *r, char *err, size_t errlen)
{
    uint8_t *buf = NULL;
    size_t buf_len = 0;
    if (!r->time_ms)
        r->time_ms = s_now_ms();
    pthread_mutex_lock(&self->lock);
    if (atomic_load(&self->failed)) {
        pthread_mutex_unlock(&self->lock);
        snprintf(err, errlen, "journal failed: not accepting");
        return REGISTRY_FAILED;
    }
    int unreadable;
    if (!s_find_any(self, r->tx_id, &unreadable)) {
        pthread_mutex_unlock(&self->lock);
        snprintf(err, errlen, unreadable ? "the index of finished deposits cannot be read" : "unknown deposit %s",
                 r->tx_id);
        return unreadable ? REGISTRY_FAILED : REGISTRY_ILLEGAL;
    }
    uint64_t lsn = s_submit_locked(self, journal, r, &buf, &buf_len, err, errlen);
    if (lsn)
        s_apply_locked(self, r, lsn);
    pthread_mutex_unlock(&self->lock);
    free(buf);
    if (!lsn || s_wait(self, journal, lsn) != 0) {
        snprintf(err, errlen, "journal failed: the record is not durable");
        return REGISTRY_FAILED;
    }
    return REGISTRY_MOVED;
}

registry_result_t registry_alert(registry_t *self, journal_t *journal, record_t *r, char *err, size_t errlen)
{
    r->kind = RECORD_ALERT;
    int id = record_alert_from_name(r->alert);
    registry_entry_t e;
    if (id >= 0 && registry_get(self, r->tx_id, &e) == 0 && (e.alerts_raised & (1u << id)))
        return REGISTRY_SAME;   /* raised before (a concurrent second raise is journaled twice: harmless) */
    registry_result_t res = registry_append(self, journal, r, err, errlen);
    if (res == REGISTRY_MOVED)
        log_error("deposit.alert", "tx=%s alert=%s login=%llu ticket=%llu ticket2=%llu reason=\"%s\"", r->tx_id,
                  r->alert, (unsigned long long) r->login, (unsigned long long) r->ticket,
                  (unsigned long long) r->ticket2, r->reason);
    else
        log_error("deposit.alert", "tx=%s alert=%s login=%llu ticket=%llu ticket2=%llu reason=\"%s\" journaled=no "
                  "why=\"%s\"", r->tx_id, r->alert, (unsigned long long) r->login, (unsigned long long) r->ticket,
                  (unsigned long long) r->ticket2, r->reason, err);
    return res;
}

/* The facts desk_step() judges e by, for actor. */
static desk_facts_t s_desk_facts(const registry_entry_t *e, const config_t *cfg, const char *actor)
{
    desk_facts_t f = { e->view.state, 0, (int) e->approvals, 0 };
    money_atto_t amount;
    if (money_parse(e->view.amount, &amount, NULL, 0) == 0)
        f.approvals_needed = desk_approvals_needed(amount, cfg->auto_credit_limit, cfg->dual_approval_limit);
    for (uint32_t i = 0; i < e->approvals && i < DESK_MAX_APPROVERS; i++)
        if (strcmp(e->approvers[i], actor) == 0)
            f.actor_approved = 1;
    return f;
}

registry_result_t registry_desk(registry_t *self, journal_t *journal, const config_t *cfg, const desk_request_t *req,
                                unsigned *effects, uint8_t **bytes, size_t *len, char *err, size_t errlen)
{
    unsigned fx_dummy;
    if (!effects)
        effects = &fx_dummy;
    *effects = DEPOSIT_EFFECT_NONE;
    if (bytes)
        *bytes = NULL;
    if (!req || !req->tx_id || !req->actor || !req->actor[0] || !req->reason || !req->reason[0] ||
        strlen(req->reason) > 150 || strlen(req->actor) > 63 || (req->origin && strlen(req->origin) > 63)) {
        snprintf(err, errlen, "an actor (at most 63 bytes) and a reason (1 to 150 bytes) are required");
        return REGISTRY_ILLEGAL;
    }
    for (const unsigned char *p = (const unsigned char *) req->reason; *p; p++)
        if (*p < 0x20 || *p == 0x7f) {
            snprintf(err, errlen, "the reason must be one line of printable text");
            return REGISTRY_ILLEGAL;
        }
    if ((req->action == DESK_ASSIGN) != (req->login != 0)) {
        snprintf(err, errlen, req->action == DESK_ASSIGN ? "assign needs a login" : "only assign takes a login");
        return REGISTRY_ILLEGAL;
    }
    record_t *rec = malloc(2 * sizeof *rec);
    if (!rec) {
        snprintf(err, errlen, "no memory");
        return REGISTRY_FAILED;
    }
    record_t *a = &rec[0], *r = &rec[1];
    record_init(a, RECORD_ADMIN_ACTION);
    a->time_ms = s_now_ms();
    S_COPY(a->tx_id, req->tx_id);
    S_COPY(a->actor, req->actor);
    S_COPY(a->origin, req->origin ? req->origin : "");
    S_COPY(a->action, desk_action_name(req->action));
    S_COPY(a->reason, req->reason);
    a->login = req->login;

    uint8_t *buf = NULL, *abuf = NULL;
    size_t buf_len = 0, abuf_len = 0;
    registry_result_t res = REGISTRY_ILLEGAL;
    uint64_t lsn = 0;
    pthread_mutex_lock(&self->lock);
    int unreadable;
    registry_entry_t *e = s_find_any(self, req->tx_id, &unreadable);
    if (atomic_load(&self->failed) || unreadable) {
        snprintf(err, errlen, "journal failed: not accepting");
        res = REGISTRY_FAILED;
    } else if (!e) {
        snprintf(err, errlen, "unknown deposit %s", req->tx_id);
    } else {
        desk_facts_t facts = s_desk_facts(e, cfg, req->actor);
        desk_step_t step = desk_step(req->action, &facts);
        if (step.outcome == DESK_REFUSE) {
            snprintf(err, errlen, "%s", step.why);
        } else {
            record_init(r, RECORD_DEPOSIT);
            r->time_ms = a->time_ms;
            S_COPY(r->tx_id, req->tx_id);
            r->event = step.event;
            r->from = e->view.state;
            r->to = deposit_step(e->view.state, step.event).to;
            r->login = req->login;
            S_COPY(r->actor, req->actor);
            S_COPY(r->origin, a->origin);
            snprintf(r->reason, sizeof r->reason, "%s: %s", a->action, req->reason);
            s_complete(r, e);
            /* both encoded before either is submitted: the pair is journaled whole or not at all */
            if (record_encode(a, &abuf, &abuf_len, err, errlen) != 0 ||
                (step.outcome == DESK_MOVE && record_encode(r, &buf, &buf_len, err, errlen) != 0)) {
                res = REGISTRY_FAILED;
            } else if (!(lsn = journal_submit(journal, abuf, abuf_len))) {
                snprintf(err, errlen, "journal refused the record");
                s_set_failed(self, "journal_submit failed");
                res = REGISTRY_FAILED;
            } else {
                s_apply_locked(self, a, lsn);
                res = REGISTRY_SAME;
                if (step.outcome == DESK_MOVE) {
                    *effects = deposit_step(r->from, r->event).effects;
                    if (!(lsn = journal_submit(journal, buf, buf_len))) {
                        snprintf(err, errlen, "journal refused the record");
                        s_set_failed(self, "journal_submit failed");
                        res = REGISTRY_FAILED;
                    } else {
                        s_apply_locked(self, r, lsn);
                        res = REGISTRY_MOVED;
                    }
                }
            }
        }
    }
    pthread_mutex_unlock(&self->lock);
    free(abuf);
    if ((res == REGISTRY_MOVED || res == REGISTRY_SAME) && s_wait(self, journal, lsn) != 0) {
        snprintf(err, errlen, "journal failed: the record is not durable");
        res = REGISTRY_FAILED;
    }
    if (res == REGISTRY_MOVED) {
        log_info("deposit.admin", "tx=%s action=%s actor=%s origin=\"%s\" login=%llu reason=\"%s\"", a->tx_id,
                 a->action, a->actor, a->origin, (unsigned long long) r->login, a->reason);
        s_log_transition(r, lsn);
    } else if (res == REGISTRY_SAME) {
        log_info("deposit.approval", "tx=%s actor=%s origin=\"%s\" reason=\"%s\" (waits for another approver)",
                 a->tx_id, a->actor, a->origin, a->reason);
    }
    if (res == REGISTRY_MOVED && bytes) {
        *bytes = buf;
        *len = buf_len;
    } else {
        free(buf);
    }
    free(rec);
    return res;
}

/* registry_link and registry_link_learned: the one link path, origin recorded when given. */
static int s_link(registry_t *self, journal_t *journal, const char *address, const char *chain_id, uint64_t login,
                  const char *actor, const char *origin, char *err, size_t errlen)
{
    char key[128];
    if (!address || !address[0] || strlen(address) >= sizeof key || !login) {
        snprintf(err, errlen, "an address (1..127 characters) and a login are required");
        return -1;
    }
    s_addr_key(address, key);
    record_t *r = malloc(sizeof *r);
    if (!r) {
        snprintf(err, errlen, "no memory");
        return -1;
    }
    record_init(r, RECORD_ADDRESS_LINK);
    r->time_ms = s_now_ms();
    S_COPY(r->address, address);
    S_COPY(r->chain_id, chain_id ? chain_id : "");
    S_COPY(r->actor, actor ? actor : "");
    S_COPY(r->action, "link");
    S_COPY(r->origin, origin ? origin : "");
    r->login = login;

    uint8_t *buf = NULL;
    size_t buf_len = 0;
    int rc = -1;
    uint64_t lsn = 0;
    pthread_mutex_lock(&self->lock);
    s_link_t *l = zhashx_lookup(self->links, key);
    if (atomic_load(&self->failed)) {
        snprintf(err, errlen, "journal failed: not accepting");
    } else if (l && l->login == login) {
        lsn = l->lsn;   /* already so linked: answer once that link is durable */
        rc = 0;
    } else if (l) {
        snprintf(err, errlen, "address already linked to login %llu", (unsigned long long) l->login);
    } else if (zhashx_size(self->links) >= self->max_deposits) {
        snprintf(err, errlen, "too many address links (%zu)", self->max_deposits);
    } else {
        lsn = s_submit_locked(self, journal, r, &buf, &buf_len, err, errlen);
        if (lsn && s_link_locked(self, r->address, r->chain_id, login, lsn, r->time_ms) == 0)
            rc = 0;
        else if (lsn)
            s_set_failed(self, "registry link failed");
    }
    pthread_mutex_unlock(&self->lock);
    free(buf);
    free(r);
    if (rc == 0 && lsn && s_wait(self, journal, lsn) != 0) {
        /* Not durable: forget the link again so nobody is shown an address that is not linked. */
        pthread_mutex_lock(&self->lock);
        s_link_t *cur = zhashx_lookup(self->links, key);
        if (cur && cur->login == login)
            zhashx_delete(self->links, key);
        pthread_mutex_unlock(&self->lock);
        snprintf(err, errlen, "journal failed: the link is not durable");
        return -1;
    }
    return rc;
}

int registry_link(registry_t *self, journal_t *journal, const char *address, const char *chain_id,
                  uint64_t login, const char *actor, char *err, size_t errlen)
{
    return s_link(self, journal, address, chain_id, login, actor, NULL, err, errlen);
}

int registry_link_learned(registry_t *self, journal_t *journal, const char *address, const char *chain_id,
                          uint64_t login, const char *node, char *err, size_t errlen)
{
    char origin[64];
    snprintf(origin, sizeof origin, "node:%.58s", node ? node : "");
    return s_link(self, journal, address, chain_id, login, "kasa:cluster", origin, err, errlen);
}

uint64_t registry_address_login(registry_t *self, const char *address)
{
    if (!address || !address[0])
        return 0;
    char key[128];
    s_addr_key(address, key);
    pthread_mutex_lock(&self->lock);
    s_link_t *l = zhashx_lookup(self->links, key);
    uint64_t login = l ? l->login : 0;
    pthread_mutex_unlock(&self->lock);
    return login;
}

int registry_address_owner(registry_t *self, const config_t *cfg, const char *address)
{
    if (registry_address_login(self, address) != 0)
        return COBO_OWN_DEPOSIT;
    return cfg && config_own_address(cfg, address) ? COBO_OWN_BROKER : 0;
}

/* ---- queries ------------------------------------------------------------------------------------ */

int registry_get(registry_t *self, const char *tx_id, registry_entry_t *out)
{
    pthread_mutex_lock(&self->lock);
    registry_entry_t *e = tx_id ? s_find(self, tx_id) : NULL;
    int rc = e ? 0 : -1;
    if (e) {
        *out = *e;
    } else if (tx_id && self->base) {   /* finished and out of memory: read back, left there */
        uint64_t first_lsn, loc;
        rc = s_find_evicted(self, tx_id, out, &first_lsn, &loc) > 0 ? 0 : -1;
    }
    pthread_mutex_unlock(&self->lock);
    return rc;
}

int registry_lookup(registry_t *self, const char *tx_id, registry_entry_t *out, uint64_t *first_lsn)
{
    uint64_t first = 0, loc;
    int rc = 0;
    pthread_mutex_lock(&self->lock);
    s_node_t *n = tx_id ? (s_node_t *) s_find(self, tx_id) : NULL;
    if (n) {
        *out = n->e;
        first = n->first_lsn;
        rc = 1;
    } else if (tx_id && self->base) {
        rc = s_find_evicted(self, tx_id, out, &first, &loc);
    }
    pthread_mutex_unlock(&self->lock);
    if (first_lsn)
        *first_lsn = rc > 0 ? first : 0;
    return rc;
}

/* An index entry's place in arrival order. */
typedef struct {
    uint64_t order, loc;
} s_ord_t;

static int s_ord_newer(const void *a, const void *b)
{
    uint64_t x = ((const s_ord_t *) a)->order, y = ((const s_ord_t *) b)->order;
    return x < y ? 1 : x > y ? -1 : 0;
}

typedef struct {
    registry_t *self;
    s_ord_t *ord;
    size_t cap, k;
} s_collect_t;

static int s_collect_one(void *arg, const findex_login_t *l)
{
    s_collect_t *c = arg;
    if (!s_superseded(c->self, l->loc) && c->k < c->cap)
        c->ord[c->k++] = (s_ord_t) { l->order, l->loc };
    return 0;
}

long registry_each_all(registry_t *self, void (*fn)(void *arg, const registry_entry_t *e), void *arg)
{
    pthread_mutex_lock(&self->lock);
    /* the index's deposits in arrival order (its login array holds every one, login 0 included) */
    size_t m = (size_t) findex_count(self->base), k = 0;
    s_ord_t *ord = m ? malloc(m * sizeof *ord) : NULL;
    registry_entry_t *tmp = m ? malloc(sizeof *tmp) : NULL;
    if (m && (!ord || !tmp)) {
        pthread_mutex_unlock(&self->lock);
        free(ord);
        free(tmp);
        return -1;
    }
    s_collect_t c = { self, ord, m, 0 };
    int unreadable = 0;
    if (m && findex_each(self->base, s_collect_one, &c) != 0) {   /* logged; memory's deposits still visited */
        log_error("registry.index_unreadable", "journal=%s reason=\"the login array cannot be read\"", self->dir);
        unreadable = 1;
    }
    k = c.k;
    if (k > 1)
        qsort(ord, k, sizeof *ord, s_ord_newer);
    long visited = 0;
    size_t i = self->count, j = 0;
    while (i > 0 || j < k) {   /* memory (arrival order) and the index, merged newest first */
        const s_node_t *n = i > 0 ? self->entries[i - 1] : NULL;
        uint64_t first_lsn;
        if (n && (j == k || n->first_lsn > ord[j].order)) {
            fn(arg, &n->e);
            i--;
        } else if (s_read_evicted(self, ord[j++].loc, tmp, &first_lsn) == 0) {
            fn(arg, tmp);
        } else {
            unreadable = 1;   /* logged; the rest is still visited */
            continue;
        }
        visited++;
    }
    pthread_mutex_unlock(&self->lock);
    free(ord);
    free(tmp);
    return unreadable ? -1 : visited;
}

int registry_each(registry_t *self, uint64_t login, int limit,
                  void (*fn)(void *arg, const registry_entry_t *e), void *arg)
{
    int visited = 0, unreadable = 0;
    pthread_mutex_lock(&self->lock);
    if (login) {
        /* memory's list and the index's range, both newest first: merged by arrival */
        char key[24];
        s_login_key(login, key);
        const s_node_t *n = zhashx_lookup(self->by_login, key);
        findex_login_it_t *it = self->base ? findex_login_begin(self->base, login) : NULL;
        findex_login_t cur;
        int has = it ? findex_login_next(it, &cur) : 0;
        registry_entry_t *tmp = malloc(sizeof *tmp);
        if ((self->base && !it) || !tmp)
            has = -1;
        while ((n || has != 0) && (limit <= 0 || visited < limit)) {
            if (has < 0) {   /* unreadable: the rest of the index's part cannot be listed */
                log_error("registry.index_unreadable", "journal=%s login=%llu reason=\"the login array cannot be "
                          "read\"", self->dir, (unsigned long long) login);
                unreadable = 1;
                has = 0;
                continue;
            }
            const findex_login_t *x = has > 0 ? &cur : NULL;
            if (x && s_superseded(self, x->loc)) {
                has = findex_login_next(it, &cur);
                continue;
            }
            uint64_t first_lsn;
            if (n && (!x || n->first_lsn > x->order)) {
                fn(arg, &n->e);
                n = n->older;
            } else if (s_read_evicted(self, x->loc, tmp, &first_lsn) == 0) {
                fn(arg, tmp);
                has = findex_login_next(it, &cur);
            } else {
                has = findex_login_next(it, &cur);
                unreadable = 1;
                continue;   /* logged; the rest of the list is still shown */
            }
            visited++;
        }
        findex_login_end(&it);
        free(tmp);
    } else {
        for (size_t i = self->count; i > 0 && (limit <= 0 || visited < limit); i--, visited++)
            fn(arg, &self->entries[i - 1]->e);
    }
    pthread_mutex_unlock(&self->lock);
    return unreadable ? -1 : visited;
}

size_t registry_count(registry_t *self)
{
    pthread_mutex_lock(&self->lock);
    size_t n = self->count + (size_t) findex_count(self->base) - self->nsup;
    pthread_mutex_unlock(&self->lock);
    return n;
}

/* Newest link first (a higher LSN was made later). */
static int s_link_newer(const void *a, const void *b)
{
    uint64_t x = (*(s_link_t *const *) a)->lsn, y = (*(s_link_t *const *) b)->lsn;
    return x < y ? 1 : x > y ? -1 : 0;
}

int registry_links(registry_t *self, uint64_t login, const char *q, int skip, int limit, registry_link_t *out)
{
    pthread_mutex_lock(&self->lock);
    size_t cap = zhashx_size(self->links), n = 0;
    s_link_t **hit = cap ? malloc(cap * sizeof *hit) : NULL;
    if (cap && !hit) {
        pthread_mutex_unlock(&self->lock);
        return -1;
    }
    int numeric = q && *q && strspn(q, "0123456789") == strlen(q);
    uint64_t q_login = numeric ? strtoull(q, NULL, 10) : 0;
    for (s_link_t *l = zhashx_first(self->links); l && n < cap; l = zhashx_next(self->links)) {
        if ((login && l->login != login) ||
            (q && *q && !strstr(l->address, q) && !(numeric && l->login == q_login)))
            continue;
        hit[n++] = l;
    }
    qsort(hit, n, sizeof *hit, s_link_newer);
    for (int i = 0; i < limit && (size_t) skip + (size_t) i < n; i++) {
        const s_link_t *l = hit[skip + i];
        registry_link_t *o = &out[i];
        S_COPY(o->address, l->address);
        S_COPY(o->chain_id, l->chain_id);
        o->login = l->login;
        o->lsn = l->lsn;
        o->time_ms = l->time_ms;
    }
    pthread_mutex_unlock(&self->lock);
    free(hit);
    return (int) n;
}

size_t registry_link_count(registry_t *self)
{
    pthread_mutex_lock(&self->lock);
    size_t n = zhashx_size(self->links);
    pthread_mutex_unlock(&self->lock);
    return n;
}

/* ---- restart ------------------------------------------------------------------------------------ */

registry_resume_t registry_resume_action(const registry_entry_t *e)
{
    switch (e->view.state) {
    case DEPOSIT_PENDING: return REGISTRY_RESUME_WAIT;
    case DEPOSIT_RECEIVED: return REGISTRY_RESUME_LOCK;
    case DEPOSIT_LOCKED: return e->attempts ? REGISTRY_RESUME_RECONCILE : REGISTRY_RESUME_CREDIT;
    case DEPOSIT_CREDITED: return e->notice_failed ? REGISTRY_RESUME_NONE : REGISTRY_RESUME_NOTIFY;
    case DEPOSIT_HELD: return REGISTRY_RESUME_PERSON;
    default: return REGISTRY_RESUME_NONE;
    }
}

const char *registry_resume_name(registry_resume_t action)
{
    switch (action) {
    case REGISTRY_RESUME_WAIT: return "waits for Cobo";
    case REGISTRY_RESUME_LOCK: return "lock";
    case REGISTRY_RESUME_CREDIT: return "credit";
    case REGISTRY_RESUME_RECONCILE: return "reconcile then credit";
    case REGISTRY_RESUME_NOTIFY: return "notify";
    case REGISTRY_RESUME_PERSON: return "needs a person";
    default: return "none";
    }
}

void registry_entry_record(const registry_entry_t *e, record_t *out)
{
    const deposit_view_t *v = &e->view;
    record_init(out, RECORD_DEPOSIT);
    out->time_ms = v->updated_ms;
    S_COPY(out->tx_id, v->tx_id);
    out->from = v->state;
    out->to = v->state;
    S_COPY(out->status, v->status);
    out->confirmations = v->confirmations;
    out->threshold = v->threshold;
    S_COPY(out->token_id, v->token_id);
    S_COPY(out->chain_id, v->chain_id);
    S_COPY(out->address, v->address);
    S_COPY(out->amount, v->amount);
    S_COPY(out->tx_hash, v->tx_hash);
    out->login = v->login;
    out->credit_minor = v->credit_minor;
    out->digits = v->digits;
    S_COPY(out->currency, v->currency);
    S_COPY(out->remainder, e->remainder);
    S_COPY(out->reason, v->reason);
    S_COPY(out->ref, e->ref);
    out->attempt = e->attempts;
    out->ticket = v->ticket;
}
