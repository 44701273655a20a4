/* checkpoint.c — see checkpoint.h. */
#include "actors/checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "actors/admins.h"
#include "actors/condvar.h"
#include "actors/registry.h"
#include "actors/withdrawals.h"
#include "schema/log.h"

/* ---- the sections ------------------------------------------------------------------------------ */

static void *s_registry_create(const config_t *cfg)
{
    registry_t *r = registry_new(cfg && cfg->max_deposits ? cfg->max_deposits : CONFIG_DEFAULT_MAX_DEPOSITS);
    if (r && cfg)
        registry_set_dir(r, cfg->journal_dir);   /* finished deposits: to and from its index */
    return r;
}

static void s_registry_destroy(void *state)
{
    registry_t *r = state;
    registry_destroy(&r);
}

static int s_registry_apply(void *state, const record_t *r, uint64_t lsn, char *err, size_t errlen)
{
    if (registry_apply(state, r, lsn) == 0)
        return 0;
    snprintf(err, errlen, "lsn %llu: more unfinished deposits or links than KASA_MAX_DEPOSITS (raise it), or the "
             "index of finished deposits cannot be read (see the log)",
             (unsigned long long) lsn);
    return -1;
}

static int s_registry_save(void *state, snap_pk_t *p) { return registry_save(state, p); }
static int s_registry_load(void *state, snap_pk_t *p, char *err, size_t errlen)
{
    return registry_load(state, p, err, errlen);
}

static int s_registry_settle(void *state, uint64_t lsn, char *err, size_t errlen)
{
    registry_set_quiet(state);   /* the writer's own copy: the running registry's line is the one that counts */
    return registry_forget_finished(state, lsn, err, errlen);
}

const checkpoint_section_t checkpoint_registry = {
    "registry", s_registry_create, s_registry_destroy, s_registry_apply, s_registry_save, s_registry_load,
    s_registry_settle,
};

static void *s_admins_create(const config_t *cfg)
{
    (void) cfg;
    return admins_new_replica();
}

static void s_admins_destroy(void *state)
{
    admins_t *a = state;
    admins_destroy(&a);
}

static int s_admins_apply(void *state, const record_t *r, uint64_t lsn, char *err, size_t errlen)
{
    (void) lsn, (void) err, (void) errlen;
    admins_apply(state, r);
    return 0;
}

static int s_admins_save(void *state, snap_pk_t *p) { return admins_save(state, p); }
static int s_admins_load(void *state, snap_pk_t *p, char *err, size_t errlen)
{
    return admins_load(state, p, err, errlen);
}

const checkpoint_section_t checkpoint_admins = {
    "admins", s_admins_create, s_admins_destroy, s_admins_apply, s_admins_save, s_admins_load, NULL,
};

static void *s_withdrawals_create(const config_t *cfg)
{
    return withdrawals_new(cfg && cfg->max_deposits ? cfg->max_deposits : CONFIG_DEFAULT_MAX_DEPOSITS);
}

static void s_withdrawals_destroy(void *state)
{
    withdrawals_t *w = state;
    withdrawals_destroy(&w);
}

static int s_withdrawals_apply(void *state, const record_t *r, uint64_t lsn, char *err, size_t errlen)
{
    if (withdrawals_apply(state, r, lsn) == 0)
        return 0;
    snprintf(err, errlen, "lsn %llu: more withdrawals than KASA_MAX_DEPOSITS: raise it", (unsigned long long) lsn);
    return -1;
}

static int s_withdrawals_save(void *state, snap_pk_t *p) { return withdrawals_save(state, p); }
static int s_withdrawals_load(void *state, snap_pk_t *p, char *err, size_t errlen)
{
    return withdrawals_load(state, p, err, errlen);
}

/* Every withdrawal, finished ones too. A snapshot without this section (written before it existed)
 * is passed over for the withdrawals alone: they then come from an older snapshot or the whole
 * journal, while the registry and the admins still start from it. */
const checkpoint_section_t checkpoint_withdrawals = {
    "withdrawals", s_withdrawals_create, s_withdrawals_destroy, s_withdrawals_apply, s_withdrawals_save,
    s_withdrawals_load, NULL,
};

const checkpoint_section_t *const checkpoint_sections[] = {
    &checkpoint_registry, &checkpoint_admins, &checkpoint_withdrawals, NULL,
};

/* ---- restore ----------------------------------------------------------------------------------- */

/* Applies the records after from_lsn up to upto_lsn (0: the end) to each of the n states (states[k]
 * is secs[k]'s), reading the journal once; *info's last_lsn, last_crc and records advance. If
 * from_lsn > 0, the record at from_lsn must be there and have the checksum expect_crc (the snapshot
 * belongs to this journal): else 1 (try another snapshot). 0, 1, or -1 with a reason. */
static int s_replay(const char *dir, const checkpoint_section_t *const *secs, void *const *states, size_t n,
                    uint64_t from_lsn, uint32_t expect_crc, uint64_t upto_lsn, checkpoint_info_t *info, char *err,
                    size_t errlen)
{
    journal_reader_t *rd = journal_reader_open(dir, from_lsn ? from_lsn : 1, err, errlen);
    record_t *r = malloc(sizeof *r);
    if (!rd || !r) {
        if (!r)
            snprintf(err, errlen, "no memory");
        journal_reader_destroy(&rd);
        free(r);
        return -1;
    }
    info->last_lsn = from_lsn;
    info->last_crc = expect_crc;
    int rc = 0, got, first = 1;
    journal_entry_t je;
    while ((got = journal_reader_next(rd, &je)) == 1) {
        if (first && from_lsn && (je.lsn != from_lsn || je.crc != expect_crc)) {
            snprintf(err, errlen, "the journal holds no record %llu with the snapshot's checksum",
                     (unsigned long long) from_lsn);
            rc = 1;
            break;
        }
        if (first && !from_lsn && je.lsn != 1)   /* a repair's BREAK segment first, or a pruned archive */
            log_warn("replay.starts_late", "journal=%s lsn=%llu reason=\"the records before it are not in the "
                     "journal or its archive\"", dir, (unsigned long long) je.lsn);
        first = 0;
        if (je.lsn == from_lsn)
            continue;   /* the snapshot's own last record: in it already */
        if (upto_lsn && je.lsn > upto_lsn)
            break;
        char why[160];
        if (record_decode(je.payload, je.len, r, why, sizeof why) != 0) {
            snprintf(err, errlen, "lsn %llu (%s at offset %llu): %s", (unsigned long long) je.lsn, je.segment,
                     (unsigned long long) je.offset, why);
            rc = -1;
            break;
        }
        for (size_t k = 0; k < n && rc == 0; k++)
            if (secs[k]->apply(states[k], r, je.lsn, err, errlen) != 0)
                rc = -1;
        if (rc != 0)
            break;
        info->last_lsn = je.lsn;
        info->last_crc = je.crc;
        info->records++;
    }
    if (got < 0 && rc == 0) {
        snprintf(err, errlen, "%s", journal_reader_error(rd));
        rc = -1;
    }
    if (rc == 0 && first && from_lsn) {
        snprintf(err, errlen, "the journal holds no record %llu (it ends before the snapshot)",
                 (unsigned long long) from_lsn);
        rc = 1;
    }
    if (rc == 0 && upto_lsn && info->last_lsn < upto_lsn) {
        snprintf(err, errlen, "the journal ends at LSN %llu, before %llu", (unsigned long long) info->last_lsn,
                 (unsigned long long) upto_lsn);
        rc = -1;
    }
    free(r);
    journal_reader_destroy(&rd);
    return rc;
}

/* Loads sec's section of the open snapshot snap into a new state. The state, or NULL with a reason. */
static void *s_load_from(const snapshot_t *snap, const checkpoint_section_t *sec, const config_t *cfg, char *err,
                         size_t errlen)
{
    const uint8_t *content;
    uint64_t len;
    void *state = NULL;
    unsigned long long lsn = (unsigned long long) snapshot_lsn(snap);
    if (snapshot_section(snap, sec->name, &content, &len) != 0) {
        snprintf(err, errlen, "snapshot %llu has no section %s", lsn, sec->name);
    } else if (!(state = sec->create(cfg))) {
        snprintf(err, errlen, "no memory");
    } else {
        snap_pk_t p;
        snap_pk_load_init(&p, content, (size_t) len);
        char why[160];
        if (sec->load(state, &p, why, sizeof why) != 0) {
            snprintf(err, errlen, "snapshot %llu, section %s: %s", lsn, sec->name, why);
            sec->destroy(state);
            state = NULL;
        }
    }
    return state;
}

/* Loads sec's section of snapshot lsn into a new state. The state, or NULL with a reason. */
static void *s_load(const char *dir, const checkpoint_section_t *sec, const config_t *cfg, uint64_t lsn,
                    uint32_t *chain_crc, char *err, size_t errlen)
{
    snapshot_t *snap = snapshot_open(dir, lsn, err, errlen);
    if (!snap)
        return NULL;
    void *state = s_load_from(snap, sec, cfg, err, errlen);
    *chain_crc = snapshot_chain_crc(snap);
    snapshot_close(&snap);
    return state;
}

static void s_skipped(checkpoint_info_t *info, const char *dir, uint64_t lsn, const char *why)
{
    if (!info->fallbacks++)
        snprintf(info->fallback_why, sizeof info->fallback_why, "%.*s", (int) sizeof info->fallback_why - 1, why);
    log_warn("snapshot.skipped", "journal=%s lsn=%llu reason=\"%s\" action=\"the snapshot before it, or the "
             "whole journal\"", dir, (unsigned long long) lsn, why);
}

void *checkpoint_restore(const char *dir, const checkpoint_section_t *sec, const config_t *cfg, uint64_t upto_lsn,
                         checkpoint_info_t *info, char *err, size_t errlen)
{
    checkpoint_info_t local;
    if (!info)
        info = &local;
    memset(info, 0, sizeof *info);
    uint64_t *lsns = NULL;
    size_t n = 0;
    if (!sec->load || snapshot_list(dir, &lsns, &n, err, errlen) != 0)
        n = 0;   /* not in snapshots, or an unreadable snapshot directory: the whole journal */
    for (size_t i = 0; i < n; i++) {
        if (upto_lsn && lsns[i] > upto_lsn)
            continue;
        char why[300];
        uint32_t chain_crc = 0;
        void *state = s_load(dir, sec, cfg, lsns[i], &chain_crc, why, sizeof why);
        if (!state) {
            s_skipped(info, dir, lsns[i], why);
            continue;
        }
        info->records = 0;
        int rc = s_replay(dir, &sec, &state, 1, lsns[i], chain_crc, upto_lsn, info, why, sizeof why);
        if (rc == 0) {
            info->snapshot_lsn = lsns[i];
            free(lsns);
            return state;
        }
        sec->destroy(state);
        if (rc < 0) {   /* the journal after it is bad: no older snapshot can do better */
            snprintf(err, errlen, "%s", why);
            free(lsns);
            return NULL;
        }
        s_skipped(info, dir, lsns[i], why);
    }
    free(lsns);
    void *state = sec->create(cfg);
    if (!state) {
        snprintf(err, errlen, "no memory");
        return NULL;
    }
    info->records = 0;
    if (s_replay(dir, &sec, &state, 1, 0, 0, upto_lsn, info, err, errlen) != 0) {
        sec->destroy(state);
        return NULL;
    }
    return state;
}

int checkpoint_restore_into(const char *dir, const checkpoint_section_t *sec, const config_t *cfg, void *live,
                            checkpoint_info_t *info, char *err, size_t errlen)
{
    void *state = checkpoint_restore(dir, sec, cfg, 0, info, err, errlen);
    if (!state)
        return -1;
    snap_pk_t p;
    snap_pk_save_init(&p);
    int rc = sec->save(state, &p);
    sec->destroy(state);
    if (rc != 0) {
        snprintf(err, errlen, "section %s: cannot encode (no memory?)", sec->name);
    } else {
        snap_pk_t in;
        snap_pk_load_init(&in, p.buf, p.len);
        rc = sec->load(live, &in, err, errlen);
    }
    snap_pk_free(&p);
    return rc;
}

/* ---- writing ----------------------------------------------------------------------------------- */

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define S_MAX_SECTIONS 16

static void s_destroy_all(const checkpoint_section_t *const *secs, void **states, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        if (states[k])
            secs[k]->destroy(states[k]);
        states[k] = NULL;
    }
}

/* Every one of the n sections rebuilt up to upto_lsn in one pass, into states[] (all NULL on entry):
 * the newest valid snapshot at or before it opened and checked once, each section loaded from it,
 * the journal after it read once for all (one per section was three opens and checksums of the
 * snapshot and three readings of the journal per snapshot written). 1 when built; 0 when a snapshot
 * that checks out lacks a section or cannot load one (the caller then restores section by section,
 * each falling back on its own); -1 with a reason. */
static int s_restore_all(const char *dir, const config_t *cfg, uint64_t upto_lsn,
                         const checkpoint_section_t *const *secs, void **states, size_t n, checkpoint_info_t *info,
                         char *err, size_t errlen)
{
    memset(info, 0, sizeof *info);
    uint64_t *lsns = NULL;
    size_t nsnap = 0;
    if (snapshot_list(dir, &lsns, &nsnap, err, errlen) != 0)
        nsnap = 0;   /* an unreadable snapshot directory: the whole journal */
    for (size_t i = 0; i < nsnap; i++) {
        if (lsns[i] > upto_lsn)
            continue;
        char why[300];
        snapshot_t *snap = snapshot_open(dir, lsns[i], why, sizeof why);
        if (!snap) {
            s_skipped(info, dir, lsns[i], why);
            continue;
        }
        int loaded = 1;
        for (size_t k = 0; k < n && loaded; k++)
            loaded = (states[k] = s_load_from(snap, secs[k], cfg, why, sizeof why)) != NULL;
        uint32_t chain_crc = snapshot_chain_crc(snap);
        snapshot_close(&snap);
        if (!loaded) {   /* a section of its own: restored alone, as a start does */
            s_destroy_all(secs, states, n);
            free(lsns);
            return 0;
        }
        info->records = 0;
        int rc = s_replay(dir, secs, states, n, lsns[i], chain_crc, upto_lsn, info, why, sizeof why);
        if (rc == 0) {
            info->snapshot_lsn = lsns[i];
            free(lsns);
            return 1;
        }
        s_destroy_all(secs, states, n);
        if (rc < 0) {
            snprintf(err, errlen, "%s", why);
            free(lsns);
            return -1;
        }
        s_skipped(info, dir, lsns[i], why);
    }
    free(lsns);
    for (size_t k = 0; k < n; k++)
        if (!(states[k] = secs[k]->create(cfg))) {
            snprintf(err, errlen, "no memory");
            s_destroy_all(secs, states, n);
            return -1;
        }
    info->records = 0;
    if (s_replay(dir, secs, states, n, 0, 0, upto_lsn, info, err, errlen) != 0) {
        s_destroy_all(secs, states, n);
        return -1;
    }
    return 1;
}

struct checkpoint_kept_t {
    void *states[S_MAX_SECTIONS];
    size_t n;                 /* 0: nothing kept */
    uint64_t lsn;             /* the snapshot they are the states of */
    uint32_t crc;             /* its last record's checksum */
};

checkpoint_kept_t *checkpoint_kept_new(void)
{
    return calloc(1, sizeof(checkpoint_kept_t));
}

/* The sections snapshots carry (those with save; NULL save: a module not in snapshots yet), into
 * secs in checkpoint_sections' order. How many. */
static size_t s_sections(const checkpoint_section_t *secs[S_MAX_SECTIONS])
{
    size_t n = 0;
    for (size_t i = 0; checkpoint_sections[i]; i++)
        if (checkpoint_sections[i]->save && n < S_MAX_SECTIONS)
            secs[n++] = checkpoint_sections[i];
    return n;
}

static void s_kept_drop(checkpoint_kept_t *kept, const checkpoint_section_t *const *secs)
{
    if (kept && kept->n) {
        s_destroy_all(secs, kept->states, kept->n);
        kept->n = 0;
    }
}

void checkpoint_kept_destroy(checkpoint_kept_t **kept_p)
{
    if (!kept_p || !*kept_p)
        return;
    const checkpoint_section_t *secs[S_MAX_SECTIONS];
    size_t n = s_sections(secs);
    if ((*kept_p)->n == n)
        s_kept_drop(*kept_p, secs);
    free(*kept_p);
    *kept_p = NULL;
}

/* 1 if kept holds the states of dir's newest snapshot (n sections), below upto_lsn. */
static int s_kept_usable(const checkpoint_kept_t *kept, size_t n, uint64_t upto_lsn, uint64_t newest)
{
    return kept && kept->n == n && kept->lsn < upto_lsn && newest == kept->lsn;
}

/* The LSN of dir's newest snapshot (by its name, checked or not), 0 if none. */
static uint64_t s_newest_snapshot(const char *dir)
{
    uint64_t *lsns = NULL, newest = 0;
    size_t nsnap = 0;
    char why[200];
    if (snapshot_list(dir, &lsns, &nsnap, why, sizeof why) == 0 && nsnap)
        newest = lsns[0];
    free(lsns);
    return newest;
}

/* Loads into kept (holding nothing) the states of dir's newest snapshot, as the next
 * checkpoint_write_kept would before anything else: the snapshot process does it as it starts, so that
 * its first snapshot applies only the records after that one (at ten million finished deposits the
 * loading is 0.7 s of CPU, most of it checking the index's runs). 0, or -1 (nothing kept: the first
 * snapshot loads them). */
static int s_kept_warm(const char *dir, const config_t *cfg, checkpoint_kept_t *kept)
{
    uint64_t newest = s_newest_snapshot(dir);
    char err[300];
    const checkpoint_section_t *secs[S_MAX_SECTIONS];
    void *states[S_MAX_SECTIONS] = { 0 };
    size_t n = s_sections(secs);
    checkpoint_info_t info;
    if (!newest || kept->n || s_restore_all(dir, cfg, newest, secs, states, n, &info, err, sizeof err) != 1)
        return -1;
    if (info.snapshot_lsn != newest || info.last_lsn != newest) {   /* passed over: the first snapshot sees */
        s_destroy_all(secs, states, n);
        return -1;
    }
    memcpy(kept->states, states, sizeof states);
    kept->n = n;
    kept->lsn = newest;
    kept->crc = info.last_crc;
    return 0;
}

int checkpoint_write_kept(const char *dir, const config_t *cfg, uint64_t upto_lsn, checkpoint_kept_t *kept,
                          checkpoint_info_t *info, char *err, size_t errlen)
{
    checkpoint_info_t local;
    if (!info)
        info = &local;
    memset(info, 0, sizeof *info);
    if (upto_lsn == 0) {
        snprintf(err, errlen, "nothing to snapshot (an empty journal)");
        return -1;
    }
    /* Never at or below the newest snapshot: its index stands on runs named by the LSNs below it, and
     * writing one of those LSNs again (from another base: an older snapshot, or the whole journal
     * once the older ones are gone) would replace a run it reads. A running kasa only goes forward;
     * a writer started again over a journal (after a kill, say) could go back. */
    uint64_t newest = s_newest_snapshot(dir);
    if (newest >= upto_lsn) {
        snprintf(err, errlen, "snapshot %llu already covers LSN %llu (snapshots only go forward)",
                 (unsigned long long) newest, (unsigned long long) upto_lsn);
        return -1;
    }
    const checkpoint_section_t *secs[S_MAX_SECTIONS];
    void *states[S_MAX_SECTIONS] = { 0 };
    size_t n = s_sections(secs);
    int got = -1;
    if (s_kept_usable(kept, n, upto_lsn, newest)) {   /* the records after the kept snapshot, onto its states */
        memcpy(states, kept->states, sizeof states);
        kept->n = 0;
        char why[300];
        if (s_replay(dir, secs, states, n, kept->lsn, kept->crc, upto_lsn, info, why, sizeof why) == 0) {
            info->snapshot_lsn = kept->lsn;
            got = 1;
        } else {   /* the slow way, as if nothing were kept */
            log_warn("snapshot.kept_dropped", "journal=%s lsn=%llu reason=\"%s\"", dir,
                     (unsigned long long) kept->lsn, why);
            s_destroy_all(secs, states, n);
            memset(info, 0, sizeof *info);
        }
    } else if (kept) {
        s_kept_drop(kept, secs);
    }
    if (got < 0)
        got = s_restore_all(dir, cfg, upto_lsn, secs, states, n, info, err, errlen);
    int rc = got < 0 ? -1 : 0;
    for (size_t k = 0; got == 0 && k < n && rc == 0; k++) {   /* section by section */
        checkpoint_info_t si;
        if (!(states[k] = checkpoint_restore(dir, secs[k], cfg, upto_lsn, &si, err, errlen)))
            rc = -1;
        else if (si.last_lsn != upto_lsn)
            snprintf(err, errlen, "section %s reached LSN %llu, not %llu", secs[k]->name,
                     (unsigned long long) si.last_lsn, (unsigned long long) upto_lsn), rc = -1;
        else if (k == 0)
            *info = si;
    }
    if (rc == 0 && info->last_lsn != upto_lsn) {
        snprintf(err, errlen, "the journal reached LSN %llu, not %llu", (unsigned long long) info->last_lsn,
                 (unsigned long long) upto_lsn);
        rc = -1;
    }
    uint32_t last_crc = info->last_crc;
    snapshot_writer_t *w = rc == 0 ? snapshot_begin(dir, upto_lsn, info->last_crc, s_now_ms(), err, errlen) : NULL;
    if (!w)
        rc = -1;
    for (size_t k = 0; k < n && rc == 0; k++) {
        snap_pk_t p;
        snap_pk_save_init(&p);
        if (secs[k]->save(states[k], &p) != 0) {
            snprintf(err, errlen, "section %s: cannot encode (no memory?)", secs[k]->name);
            rc = -1;
        } else if (snapshot_put(w, secs[k]->name, p.buf, p.len, err, errlen) != 0) {
            rc = -1;
        }
        snap_pk_free(&p);
        if (!kept) {
            secs[k]->destroy(states[k]);   /* each freed once saved: the next one's encoding needs the room */
            states[k] = NULL;
        }
    }
    if (rc != 0) {
        s_destroy_all(secs, states, n);
        snapshot_abort(&w);
        return -1;
    }
    if (snapshot_commit(&w, err, errlen) != 0) {
        s_destroy_all(secs, states, n);
        return -1;
    }
    if (kept) {   /* settled into what loading the new snapshot gives, and kept for the next one */
        char why[300];
        int settled = 1;
        for (size_t k = 0; k < n && settled; k++)
            if (secs[k]->settle && secs[k]->settle(states[k], upto_lsn, why, sizeof why) != 0) {
                log_warn("snapshot.kept_dropped", "journal=%s lsn=%llu reason=\"%s\"", dir,
                         (unsigned long long) upto_lsn, why);
                settled = 0;
            }
        if (settled) {
            memcpy(kept->states, states, sizeof states);
            kept->n = n;
            kept->lsn = upto_lsn;
            kept->crc = last_crc;
        } else {
            s_destroy_all(secs, states, n);
        }
    }
    size_t moved = 0;
    char why[300];
    if (journal_archive(dir, upto_lsn, &moved, why, sizeof why) != 0)
        log_warn("journal.archive_failed", "journal=%s lsn=%llu reason=\"%s\" (retried after the next snapshot)",
                 dir, (unsigned long long) upto_lsn, why);
    else if (moved)
        log_info("journal.archived", "journal=%s segments=%zu upto_lsn=%llu", dir, moved,
                 (unsigned long long) upto_lsn);
    return 0;
}

int checkpoint_write(const char *dir, const config_t *cfg, uint64_t upto_lsn, checkpoint_info_t *info, char *err,
                     size_t errlen)
{
    return checkpoint_write_kept(dir, cfg, upto_lsn, NULL, info, err, errlen);
}

/* ---- the thread -------------------------------------------------------------------------------- */

struct checkpointer_t {
    journal_t *journal;
    config_t cfg;
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    uint64_t last_lsn;        /* of the newest snapshot */
    /* the writer thread (s_write_run), at the idle policy; one job at a time, under mu */
    pthread_t writer;
    pthread_cond_t wcv;       /* the writer waits on it for a job; the thread for its end */
    int writer_started, writer_stop, job, job_done, job_rc;
    checkpoint_kept_t *kept;  /* the writer's states, kept from one snapshot to the next */
    char exe[512];            /* checkpointer_use_process ("": the writer thread writes) */
    pid_t proc;               /* the snapshot process (0: none running); the writer thread's alone */
    int proc_early;           /* the writer thread has tried starting it ahead of the first snapshot */
    int proc_in, proc_out;    /* its stdin (requests) and stdout (answers) */
    int64_t job_cpu_us;       /* the last snapshot's CPU time, the writer thread's or the process's */
    long job_rss_kib;         /* the snapshot process's peak resident memory (0: the thread wrote) */
    uint64_t job_lsn;
    checkpoint_info_t job_info;
    char job_err[400];
    atomic_uint_fast64_t written;
    void (*on_written)(void *arg, uint64_t lsn);   /* checkpointer_on_written (under mu) */
    void *on_written_arg;
};

/* Sets the calling thread's I/O priority (ioprio_set(2); glibc has no wrapper) to S_IOPRIO_LOW: the
 * best-effort class at its lowest level, which snapshot writing takes for its life (the writer
 * thread when it writes, the snapshot process from its start). Not the idle class, which the
 * kernel also gives a thread of the idle scheduling policy that names none: a snapshot's fsync
 * writes inode-table blocks that the journal's segment shares (inodes of one directory lie
 * together), and an idle-class write of such a block waited 10-12 ms in the disk's scheduler
 * (mq-deadline) behind the journal's own writes while the journal's fdatasync waited for that very
 * block (block tracing, bench_history at 1M: every acknowledgement over 5 ms during a snapshot
 * fell in such a wait). The live modules are told on the checkpointer thread, of the ordinary
 * class. 0, or -1 if the kernel refused (then nothing changed). */
#define S_IOPRIO_WHO_PROCESS 1
#define S_IOPRIO_CLASS_BE 2
#define S_IOPRIO_CLASS_SHIFT 13
#define S_IOPRIO_LOW (S_IOPRIO_CLASS_BE << S_IOPRIO_CLASS_SHIFT | 7)

static int s_ioprio_set(int value)
{
    return syscall(SYS_ioprio_set, S_IOPRIO_WHO_PROCESS, syscall(SYS_gettid), value) == 0 ? 0 : -1;
}

/* What snapshot writing runs at, for the calling thread: the idle scheduling policy (nice 10 where it
 * is refused) and S_IOPRIO_LOW. */
static void s_take_snapshot_priority(void)
{
    struct sched_param sp = { 0 };
    if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp) != 0)
        setpriority(PRIO_PROCESS, (id_t) syscall(SYS_gettid), 10);
    s_ioprio_set(S_IOPRIO_LOW);
}

/* Thread t's CPU time (user and system), µs; 0 if it cannot be read. */
static int64_t s_thread_cpu_us(pthread_t t)
{
    clockid_t id;
    struct timespec ts;
    if (pthread_getcpuclockid(t, &id) != 0 || clock_gettime(id, &ts) != 0)
        return 0;
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- the snapshot process ---------------------------------------------------------------------- */

/* The idle scheduling policy is not a strict priority. The kernel's scheduler (EEVDF) lets a woken
 * thread that used more than its share before it slept (negative lag: kasa's busy HTTP and journal
 * threads, the kernel's softirq and block-flush workers) run only once the running thread has paid
 * that lag back, and an idle-policy thread pays it back at about wall-clock speed: up to the lag's
 * bound, one tick (4 ms at HZ 250). Traced under bench_history (sched_switch/sched_wakeup), such
 * threads waited 2.5-4 ms behind the snapshot process while it computed, at the start and the end
 * of a snapshot alike. A thread that sleeps leaves the CPU to them at once: so while it writes a
 * snapshot the process pauses S_PACE_PAUSE_NS every S_PACE_PERIOD_NS of wall-clock time (a timer's
 * signal; its handler sleeps), and no thread waits behind it for longer than a period. */
#define S_PACE_PERIOD_NS 500000
#define S_PACE_PAUSE_NS 50000

static void s_pace(int sig)
{
    (void) sig;
    int saved = errno;
    struct timespec ts = { 0, S_PACE_PAUSE_NS };
    nanosleep(&ts, NULL);
    errno = saved;
}

/* Arms (on) or disarms the pacing timer of the calling process, made at the first call. Syscalls
 * the signal interrupts restart (SA_RESTART); a process that cannot make the timer runs unpaced. */
static void s_pace_set(int on)
{
    static timer_t timer;
    static int made = -1;
    if (made < 0) {
        prctl(PR_SET_TIMERSLACK, 1000UL);   /* the pause as asked, not 50 µs more */
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = s_pace;
        sa.sa_flags = SA_RESTART;
        sigemptyset(&sa.sa_mask);
        struct sigevent ev;
        memset(&ev, 0, sizeof ev);
        ev.sigev_notify = SIGEV_SIGNAL;
        ev.sigev_signo = SIGRTMIN;
        made = sigaction(SIGRTMIN, &sa, NULL) == 0 && timer_create(CLOCK_MONOTONIC, &ev, &timer) == 0;
    }
    if (!made)
        return;
    struct itimerspec it = { { 0, on ? S_PACE_PERIOD_NS : 0 }, { 0, on ? S_PACE_PERIOD_NS : 0 } };
    timer_settime(timer, 0, &it, NULL);
}

/* Reads one line (up to '\n', which is dropped) from fd into buf. 0, or -1 at the end or an error. */
static int s_read_line(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    while (len + 1 < cap) {
        ssize_t n = read(fd, buf + len, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        if (buf[len] == '\n')
            break;
        len++;
    }
    buf[len] = '\0';
    return 0;
}

int checkpoint_process_main(const char *dir, size_t max_deposits, pid_t parent, int in_fd, int out_fd)
{
    if (!parent)
        parent = getppid();
    prctl(PR_SET_PDEATHSIG, SIGKILL);   /* never a snapshot writer left behind a dead kasa */
    if (getppid() != parent)   /* it died before: a second writer beside the next kasa's, never */
        return 1;
    s_take_snapshot_priority();
    config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    snprintf(cfg.journal_dir, sizeof cfg.journal_dir, "%s", dir);
    cfg.max_deposits = max_deposits;
    checkpoint_kept_t *kept = checkpoint_kept_new();
    char line[64], out[600];
    int rc = kept ? 0 : 1;
    if (kept) {   /* ready before the first snapshot is asked (kasa starts it with itself) */
        s_pace_set(1);
        s_kept_warm(dir, &cfg, kept);
        s_pace_set(0);
    }
    while (rc == 0 && s_read_line(in_fd, line, sizeof line) == 0) {
        char *end;
        errno = 0;
        unsigned long long lsn = strtoull(line, &end, 10);
        checkpoint_info_t info;
        char err[400] = "";
        struct timespec t0, t1;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
        int bad = errno || *end || !lsn;
        if (!bad)
            s_pace_set(1);
        int wrote = bad ? (snprintf(err, sizeof err, "not an LSN: '%.40s'", line), -1)
                        : checkpoint_write_kept(dir, &cfg, lsn, kept, &info, err, sizeof err);
        s_pace_set(0);
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        long long cpu_us = (long long) (t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000;
        if (wrote == 0)
            snprintf(out, sizeof out, "ok %llu %ld %lld %ld\n", (unsigned long long) info.snapshot_lsn, info.records,
                     cpu_us, ru.ru_maxrss);
        else
            snprintf(out, sizeof out, "error %.500s\n", err);
        size_t len = strlen(out), done = 0;
        while (done < len) {
            ssize_t n = write(out_fd, out + done, len - done);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                rc = 1;   /* kasa is gone */
                break;
            }
            done += (size_t) n;
        }
    }
    checkpoint_kept_destroy(&kept);
    config_clear(&cfg);
    return rc;
}

/* Ends the snapshot process, if one runs: its stdin closed (it leaves when idle), waited for. */
static void s_proc_stop(checkpointer_t *self)
{
    if (!self->proc)
        return;
    close(self->proc_in);
    close(self->proc_out);
    while (waitpid(self->proc, NULL, 0) < 0 && errno == EINTR)
        ;
    self->proc = 0;
}

/* Starts `exe journal snapshot-process DIR --max-deposits N`. 0, or -1 with a reason. */
static int s_proc_start(checkpointer_t *self, char *err, size_t errlen)
{
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || (pipe2(out, O_CLOEXEC) != 0 && (close(in[0]), close(in[1]), 1))) {
        snprintf(err, errlen, "cannot make pipes for the snapshot process: %s", strerror(errno));
        return -1;
    }
    char maxs[24], parent[24];
    snprintf(maxs, sizeof maxs, "%zu", self->cfg.max_deposits ? self->cfg.max_deposits : CONFIG_DEFAULT_MAX_DEPOSITS);
    snprintf(parent, sizeof parent, "%d", (int) getpid());
    char *argv[] = { "kasa", "journal", "snapshot-process", self->cfg.journal_dir, "--max-deposits", maxs,
                     "--parent", parent, NULL };
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);   /* dup2 clears close-on-exec */
    posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
    /* nothing else of kasa's: a listening socket it held would outlive kasa as long as it does */
    posix_spawn_file_actions_addclosefrom_np(&fa, STDERR_FILENO + 1);
    posix_spawnattr_init(&at);
    sigset_t none, dfl;
    sigemptyset(&none);
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGPIPE);
    sigaddset(&dfl, SIGTERM);
    sigaddset(&dfl, SIGINT);
    posix_spawnattr_setsigmask(&at, &none);   /* kasa serve's threads block signals; the process need not */
    posix_spawnattr_setsigdefault(&at, &dfl);
    /* At this thread's ordinary policy until it takes the idle one itself (checkpoint_process_main):
     * until its exec the child runs on kasa's own memory, and its exec takes kasa's memory-map lock
     * for a moment; at the idle policy it could be preempted there with every page fault of kasa's
     * threads waiting behind it. */
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    extern char **environ;
    int rc = posix_spawn(&self->proc, self->exe, &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(in[0]);
    close(out[1]);
    if (rc != 0) {
        close(in[1]);
        close(out[0]);
        self->proc = 0;
        snprintf(err, errlen, "cannot start the snapshot process %.200s: %s", self->exe, strerror(rc));
        return -1;
    }
    /* The child has exec'd (posix_spawn returns after it): its dynamic loading (a few ms of CPU)
     * already runs at the idle policy and the lowest best-effort I/O level, not at this thread's. */
    struct sched_param sp = { 0 };
    sched_setscheduler(self->proc, SCHED_IDLE, &sp);
    syscall(SYS_ioprio_set, S_IOPRIO_WHO_PROCESS, (int) self->proc, S_IOPRIO_LOW);
    self->proc_in = in[1];
    self->proc_out = out[0];
    return 0;
}

/* Has the snapshot process (started if none runs) write the snapshot of lsn; its answer into *info,
 * job_cpu_us and job_rss_kib. A process that dies before it answers is replaced and asked once more.
 * 0, or -1 with a reason. */
static int s_proc_write(checkpointer_t *self, uint64_t lsn, checkpoint_info_t *info, char *err, size_t errlen)
{
    memset(info, 0, sizeof *info);
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!self->proc && s_proc_start(self, err, errlen) != 0)
            return -1;
        char req[32], ans[600];
        int n = snprintf(req, sizeof req, "%llu\n", (unsigned long long) lsn);
        if (write(self->proc_in, req, (size_t) n) != n || s_read_line(self->proc_out, ans, sizeof ans) != 0) {
            int status = 0;
            pid_t pid = self->proc;
            close(self->proc_in);
            close(self->proc_out);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
            self->proc = 0;
            if (WIFSIGNALED(status))
                snprintf(err, errlen, "the snapshot process %d was killed by signal %d", (int) pid, WTERMSIG(status));
            else
                snprintf(err, errlen, "the snapshot process %d exited (status %d)", (int) pid,
                         WIFEXITED(status) ? WEXITSTATUS(status) : -1);
            log_warn("snapshot.process_lost", "journal=%s pid=%d reason=\"%s\"", self->cfg.journal_dir, (int) pid, err);
            continue;
        }
        unsigned long long from = 0;
        long records = 0, rss = 0;
        long long cpu_us = 0;
        if (sscanf(ans, "ok %llu %ld %lld %ld", &from, &records, &cpu_us, &rss) == 4) {
            info->snapshot_lsn = from;
            info->records = records;
            info->last_lsn = lsn;
            self->job_cpu_us = cpu_us;
            self->job_rss_kib = rss;
            return 0;
        }
        snprintf(err, errlen, "%.300s", strncmp(ans, "error ", 6) == 0 ? ans + 6 : ans);
        return -1;
    }
    return -1;
}

/* The writer thread: builds and writes each snapshot the checkpointer thread hands it, at the idle scheduling
 * policy and the lowest best-effort I/O level (S_IOPRIO_LOW) when it writes them itself (the snapshot process takes
 * them itself as it starts, checkpoint_process_main; then this thread only waits on a pipe). A thread of the idle
 * policy runs only on CPU time no other thread wants, and any other thread that wakes takes the CPU from it at
 * once; under nice 10 a woken acknowledgement's thread could wait out the snapshot thread's slice, a few ms at each
 * of the several hand-overs an acknowledgement makes. Measured (bench_history, 1M, the answers whose request
 * overlapped a snapshot's restore phase): answers over 5 ms 3.8-9.2% -> 1.0-1.7%. The live modules are told on the
 * checkpointer thread, of the ordinary policy: registry_forget_finished holds the registry's lock, which every
 * webhook waits for, and a thread cannot leave the idle policy without CAP_SYS_NICE. If the idle policy is refused,
 * nice 10 stands in for it. */
static void *s_write_run(void *arg)
{
    checkpointer_t *self = arg;
    pthread_setname_np(pthread_self(), "snapshot");   /* as ps, top and perf show it */
    int idle = 0;
    pthread_mutex_lock(&self->mu);
    for (;;) {
        while (!self->job && !self->writer_stop && !(self->exe[0] && !self->proc_early))
            pthread_cond_wait(&self->wcv, &self->mu);
        if (!self->job && self->writer_stop)
            break;
        if (!self->job) {   /* started now, its exec and dynamic loading not in the first snapshot */
            self->proc_early = 1;
            pthread_mutex_unlock(&self->mu);
            char err[400];
            if (!self->proc && s_proc_start(self, err, sizeof err) != 0)
                log_warn("snapshot.process_not_started", "journal=%s reason=\"%s\" action=\"started again at the "
                         "first snapshot\"", self->cfg.journal_dir, err);
            pthread_mutex_lock(&self->mu);
            continue;
        }
        uint64_t lsn = self->job_lsn;
        int by_process = self->exe[0] != '\0';
        pthread_mutex_unlock(&self->mu);
        if (!by_process && !idle) {   /* it writes itself (the process takes its own policy) */
            s_take_snapshot_priority();
            idle = 1;
        }
        checkpoint_info_t info;
        char err[400] = "";
        int64_t cpu0_us = s_thread_cpu_us(pthread_self());
        int rc = by_process ? s_proc_write(self, lsn, &info, err, sizeof err)
                            : checkpoint_write_kept(self->cfg.journal_dir, &self->cfg, lsn, self->kept, &info, err,
                                                    sizeof err);
        pthread_mutex_lock(&self->mu);
        if (!by_process) {
            self->job_cpu_us = s_thread_cpu_us(pthread_self()) - cpu0_us;
            self->job_rss_kib = 0;
        }
        self->job_rc = rc;
        self->job_info = info;
        snprintf(self->job_err, sizeof self->job_err, "%s", err);
        self->job = 0;
        self->job_done = 1;
        pthread_cond_broadcast(&self->wcv);
    }
    pthread_mutex_unlock(&self->mu);
    s_proc_stop(self);
    return NULL;
}

/* Has the writer thread write the snapshot of lsn and waits for it; under mu (released meanwhile).
 * checkpoint_write's return, its info and reason. */
static int s_write(checkpointer_t *self, uint64_t lsn, checkpoint_info_t *info, char *err, size_t errlen)
{
    self->job_lsn = lsn;
    self->job = 1;
    self->job_done = 0;
    pthread_cond_broadcast(&self->wcv);
    while (!self->job_done)
        pthread_cond_wait(&self->wcv, &self->mu);
    *info = self->job_info;
    snprintf(err, errlen, "%s", self->job_err);
    return self->job_rc;
}

static void *s_run(void *arg)
{
    checkpointer_t *self = arg;
    int64_t last_ms = s_now_ms(), retry_ms = 0;
    pthread_mutex_lock(&self->mu);
    while (!self->stop) {
        struct timespec until;
        condvar_deadline(&until, 200);
        pthread_cond_timedwait(&self->cv, &self->mu, &until);
        if (self->stop)
            break;
        uint64_t durable = journal_durable_lsn(self->journal);
        int64_t now = s_now_ms();
        uint64_t every = self->cfg.snapshot_every_records;
        int64_t every_ms = (int64_t) self->cfg.snapshot_every_s * 1000;
        int due = durable > self->last_lsn && now >= retry_ms &&
                  ((every && durable - self->last_lsn >= every) || (every_ms && now - last_ms >= every_ms));
        if (!due)
            continue;
        char err[400];
        checkpoint_info_t info;
        int64_t t0 = s_now_ms();
        int rc = s_write(self, durable, &info, err, sizeof err);   /* mu released meanwhile */
        int64_t cpu_ms = self->job_cpu_us / 1000;
        long rss_kib = self->job_rss_kib;
        int pid = (int) self->proc;
        void (*on_written)(void *arg, uint64_t lsn) = rc == 0 ? self->on_written : NULL;
        void *on_written_arg = self->on_written_arg;
        if (on_written) {   /* outside mu: it takes its module's own lock */
            pthread_mutex_unlock(&self->mu);
            on_written(on_written_arg, durable);
            pthread_mutex_lock(&self->mu);
        }
        int64_t took = s_now_ms() - t0;   /* the modules' letting go included */
        if (rc == 0) {
            self->last_lsn = durable;
            last_ms = s_now_ms();
            atomic_fetch_add(&self->written, 1);
            log_info("snapshot.written", "journal=%s lsn=%llu from_snapshot=%llu records_read=%ld took_ms=%lld "
                     "cpu_ms=%lld process=%d process_rss_kib=%ld", self->cfg.journal_dir, (unsigned long long) durable,
                     (unsigned long long) info.snapshot_lsn, info.records, (long long) took, (long long) cpu_ms, pid,
                     rss_kib);
        } else {
            retry_ms = s_now_ms() + 60000;
            log_error("snapshot.failed", "journal=%s lsn=%llu reason=\"%s\" action=\"retry in a minute; the "
                      "journal keeps everything meanwhile\"", self->cfg.journal_dir, (unsigned long long) durable, err);
        }
    }
    pthread_mutex_unlock(&self->mu);
    return NULL;
}

checkpointer_t *checkpointer_new(journal_t *journal, const config_t *cfg, char *err, size_t errlen)
{
    checkpointer_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "no memory");
        return NULL;
    }
    self->journal = journal;
    self->cfg = *cfg;   /* the strings are arrays; what the thread reads stays valid */
    pthread_mutex_init(&self->mu, NULL);
    if (condvar_init(&self->cv) != 0) {
        snprintf(err, errlen, "cannot make a condition variable");
        free(self);
        return NULL;
    }
    pthread_cond_init(&self->wcv, NULL);
    if (!(self->kept = checkpoint_kept_new())) {
        snprintf(err, errlen, "no memory");
        checkpointer_destroy(&self);
        return NULL;
    }
    uint64_t *lsns = NULL;
    size_t n = 0;
    char why[200];
    if (snapshot_list(cfg->journal_dir, &lsns, &n, why, sizeof why) == 0 && n)
        self->last_lsn = lsns[0];
    free(lsns);
    if (!cfg->snapshot_every_records && !cfg->snapshot_every_s)
        return self;   /* snapshots off */
    if (pthread_create(&self->writer, NULL, s_write_run, self) != 0) {
        snprintf(err, errlen, "cannot start the snapshot writer thread");
        checkpointer_destroy(&self);
        return NULL;
    }
    self->writer_started = 1;
    if (pthread_create(&self->thread, NULL, s_run, self) != 0) {
        snprintf(err, errlen, "cannot start the checkpointer thread");
        checkpointer_destroy(&self);
        return NULL;
    }
    self->started = 1;
    return self;
}

void checkpointer_destroy(checkpointer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    checkpointer_t *self = *self_p;
    *self_p = NULL;
    if (self->started) {
        pthread_mutex_lock(&self->mu);
        self->stop = 1;
        pthread_cond_signal(&self->cv);
        pthread_mutex_unlock(&self->mu);
        pthread_join(self->thread, NULL);
    }
    if (self->writer_started) {   /* idle: the checkpointer thread waited for its last job */
        pthread_mutex_lock(&self->mu);
        self->writer_stop = 1;
        pthread_cond_broadcast(&self->wcv);
        pthread_mutex_unlock(&self->mu);
        pthread_join(self->writer, NULL);
    }
    checkpoint_kept_destroy(&self->kept);
    pthread_cond_destroy(&self->wcv);
    pthread_cond_destroy(&self->cv);
    pthread_mutex_destroy(&self->mu);
    config_clear(&self->cfg);
    free(self);
}

void checkpointer_use_process(checkpointer_t *self, const char *exe)
{
    pthread_mutex_lock(&self->mu);
    snprintf(self->exe, sizeof self->exe, "%s", exe ? exe : "");
    pthread_cond_broadcast(&self->wcv);   /* the writer thread starts the process ahead of the first snapshot */
    pthread_mutex_unlock(&self->mu);
}

void checkpointer_on_written(checkpointer_t *self, void (*fn)(void *arg, uint64_t lsn), void *arg)
{
    pthread_mutex_lock(&self->mu);
    self->on_written = fn;
    self->on_written_arg = arg;
    pthread_mutex_unlock(&self->mu);
}

uint64_t checkpointer_written(checkpointer_t *self)
{
    return self ? atomic_load(&self->written) : 0;
}
