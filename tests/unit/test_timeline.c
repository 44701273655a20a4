/* test_timeline.c — a withdrawal's timeline (`kasa withdrawal show` and the admin panel's) reads the
 * journal from the withdrawal's first record to its last only, where the withdrawals' replay says
 * they are, not from the journal's start: with the withdrawal far from the start of a long history
 * the output is what a whole scan gives, and it stays so once the history before the withdrawal's
 * first record cannot be read at all (a whole scan then fails on it). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "actors/checkpoint.h"
#include "actors/cobo_auth.h"
#include "actors/withdrawals.h"
#include "journal/jformat.h"
#include "journal/journal.h"
#include "schema/json.h"
#include "tests/check.h"
#include "tools/commands.h"
#include "web/admin.h"
#include "tests/unit/support_journal.h"
#include "tests/unit/support_snapshot.h"
#include "tests/unit/support_tmp.h"

#define S_WD "w%0*x"   /* a withdrawal id: "w" and WITHDRAWAL_ID_HEX hex digits */

static char s_dir[200], s_conf[300], s_capture[300];
static config_t s_cfg;
static char s_id[2][32];   /* a withdrawal made early, one made late in the history */

static void s_deposit(journal_t *j, int i)
{
    record_t r;
    record_init(&r, RECORD_DEPOSIT);
    r.time_ms = 1700000000000LL + i * 1000;
    snprintf(r.tx_id, sizeof r.tx_id, "tx-%d", i);
    r.login = 1000 + (uint64_t) (i % 7);
    r.from = DEPOSIT_NONE;
    r.to = DEPOSIT_RECEIVED;
    snprintf(r.amount, sizeof r.amount, "%d.%02d", 10 + i % 90, i % 100);
    snprintf(r.token_id, sizeof r.token_id, "TRON_USDT");
    snprintf(r.status, sizeof r.status, "Completed");
    CHECK(support_journal_put(j, &r) != 0);
}

/* Record k of withdrawal w: its request first, then an approval, a debit attempt, moves on. */
static void s_withdrawal(journal_t *j, int w, int k, int i)
{
    record_t r;
    record_init(&r, k == 1 ? RECORD_ADMIN_ACTION : k == 2 ? RECORD_WITHDRAWAL_ATTEMPT : RECORD_WITHDRAWAL);
    r.time_ms = 1700000000000LL + i * 1000;
    r.login = 1003;
    snprintf(r.tx_id, sizeof r.tx_id, "%s", s_id[w]);
    if (r.kind == RECORD_WITHDRAWAL) {
        r.wfrom = k == 0 ? WITHDRAWAL_NONE : (withdrawal_state_t) (k % WITHDRAWAL_STATE_COUNT);
        r.wto = (withdrawal_state_t) ((k + 1) % WITHDRAWAL_STATE_COUNT);
        r.wevent = (withdrawal_event_t) (k % WITHDRAWAL_EVENT_COUNT);
        snprintf(r.token_id, sizeof r.token_id, "TRON_USDT");
        snprintf(r.chain_id, sizeof r.chain_id, "TRON");
        snprintf(r.address, sizeof r.address, "TDest%d", w);
        snprintf(r.amount, sizeof r.amount, "%d.00", 50 + w);
        snprintf(r.fee, sizeof r.fee, "1.00");
        r.credit_minor = 5000 + w;
        r.digits = 2;
        snprintf(r.currency, sizeof r.currency, "USD");
        snprintf(r.actor, sizeof r.actor, "investor:1003");
        snprintf(r.origin, sizeof r.origin, "ip:203.0.113.%d", k);
    } else if (r.kind == RECORD_ADMIN_ACTION) {
        snprintf(r.action, sizeof r.action, "approve");
        snprintf(r.actor, sizeof r.actor, "admin:ayse");
        snprintf(r.reason, sizeof r.reason, "checked %d", k);
    } else {
        snprintf(r.action, sizeof r.action, "debit");
        r.attempt = 1;
    }
    CHECK(support_journal_put(j, &r) != 0);
}

/* The early withdrawal's request and approval, deposits up to record `deposits`, then the late
 * withdrawal's first `late` records, each followed by `between` deposits. How many records. */
static int s_history(journal_t *j, int deposits, int late, int between)
{
    int i = 0;
    for (int k = 0; k < 2; k++)
        s_withdrawal(j, 0, k, i++);
    for (; i < deposits; i++)
        s_deposit(j, i);
    for (int k = 0; k < late; k++) {
        s_withdrawal(j, 1, k, i++);
        for (int d = 0; d < between; d++, i++)
            s_deposit(j, i);
    }
    return i;
}

/* What fn(arg) prints on standard output, into out (up to cap bytes, NUL-terminated); fn's result. */
static int s_capture_stdout(int (*fn)(void *), void *arg, char *out, size_t cap)
{
    fflush(stdout);
    int saved = dup(1), fd = open(s_capture, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 1);
    close(fd);
    int rc = fn(arg);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    FILE *f = fopen(s_capture, "r");
    size_t n = f ? fread(out, 1, cap - 1, f) : 0;
    out[n] = '\0';
    if (f)
        fclose(f);
    return rc;
}

typedef struct {
    const char *id;
    int json;
    uint64_t upto;
} s_what_t;

static int s_run_show(void *arg)
{
    s_what_t *w = arg;
    char *argv[] = { "withdrawal", "show", (char *) w->id, w->json ? "--json" : "--config",
                     w->json ? "--config" : s_conf, w->json ? s_conf : NULL, NULL };
    return cmd_withdrawal(w->json ? 6 : 5, argv);
}

static int s_run_scan_all(void *arg)
{
    s_what_t *w = arg;
    int found = 0;
    int rc = cmd_show_timeline(s_dir, w->id, w->json, "kasa withdrawal", "withdrawal", 0, w->upto, &found);
    return rc == 0 && found ? 0 : -1;
}

/* Runs `kasa withdrawal show ID [--json] --config FILE`; its standard output into out. Exit status. */
static int s_show(const char *id, int json, char *out, size_t cap)
{
    s_what_t w = { id, json, 0 };
    return s_capture_stdout(s_run_show, &w, out, cap);
}

/* What the whole-journal scan of before gave: every record of id from LSN 1 up to upto, as
 * cmd_show_timeline prints it (the text form after the "now:" line `show` prints first). 0, or -1
 * if it failed or found nothing. */
static int s_scan_all(const char *id, int json, uint64_t upto, char *out, size_t cap)
{
    s_what_t w = { id, json, upto };
    return s_capture_stdout(s_run_scan_all, &w, out, cap);
}

/* The withdrawal as the withdrawals' replay (snapshot + journal) knows it. */
static int s_view(const char *id, withdrawal_view_t *w)
{
    char err[300];
    withdrawals_t *wd = checkpoint_restore(s_dir, &checkpoint_withdrawals, &s_cfg, 0, NULL, err, sizeof err);
    int rc = wd ? withdrawals_get(wd, id, w) : -1;
    withdrawals_destroy(&wd);
    return rc;
}

/* A fresh journal directory with a configuration file naming it; the journal opened there with
 * small segments (NULL if it cannot be). */
static journal_t *s_setup(void)
{
    support_tmp_fresh(s_dir, sizeof s_dir, "timeline", "far");
    mkdir(s_dir, 0700);
    snprintf(s_id[0], sizeof s_id[0], S_WD, WITHDRAWAL_ID_HEX, 0xe1);
    snprintf(s_id[1], sizeof s_id[1], S_WD, WITHDRAWAL_ID_HEX, 0xe2);
    memset(&s_cfg, 0, sizeof s_cfg);
    snprintf(s_cfg.journal_dir, sizeof s_cfg.journal_dir, "%s", s_dir);
    s_cfg.max_deposits = 100000;
    snprintf(s_conf, sizeof s_conf, "%s/kasa.env", s_dir);
    snprintf(s_capture, sizeof s_capture, "%s/out.txt", s_dir);
    char secret[65], pub[65];
    memset(secret, '7', 64);
    secret[64] = '\0';
    cobo_pubkey_from_seed(secret, pub);
    FILE *f = fopen(s_conf, "w");
    CHECK(f != NULL);
    if (!f)
        return NULL;
    fprintf(f, "KASA_JOURNAL_DIR=%s\nCOBO_API_URL=http://127.0.0.1:9/v2\nCOBO_API_KEY=%s\nCOBO_API_SECRET=%s\n"
            "MT5_URL=http://127.0.0.1:9\nMT5_LOGIN=1\nMT5_PASSWORD=pw\nTELEGRAM_BOT_TOKEN=1:x\n"
            "TELEGRAM_CHAT_ID=1\nKASA_METRICS_LISTEN=off\n", s_dir, pub, secret);
    fchmod(fileno(f), 0600);
    fclose(f);
    journal_t *j = support_journal_small(s_dir, 4096);
    CHECK(j != NULL);
    return j;
}

/* Flips a byte of the payload of the record at LSN 3 (in the journal's first segment): any read of
 * the journal from LSN 1 fails from then on. */
static void s_damage_lsn_3(void)
{
    char err[200], path[700], seg[JF_NAME_MAX] = "";
    uint64_t off = 0;
    journal_reader_t *rd = journal_reader_open(s_dir, 3, err, sizeof err);
    journal_entry_t je;
    if (rd && journal_reader_next(rd, &je) == 1 && je.lsn == 3) {
        snprintf(seg, sizeof seg, "%s", je.segment);
        off = je.offset + JF_REC_HDR + je.len / 2;
    }
    journal_reader_destroy(&rd);
    jf_seg_t *segs = NULL;
    size_t n = 0;
    CHECK_EQ_INT(jf_list_all(s_dir, &segs, &n, err, sizeof err), 0);
    CHECK(n > 3 && off > 0);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(segs[i].name, seg) != 0)
            continue;
        jf_seg_path(s_dir, &segs[i], path, sizeof path);
        int fd = open(path, O_RDWR);
        unsigned char b = 0;
        CHECK(fd >= 0 && pread(fd, &b, 1, (off_t) off) == 1);
        b ^= 0x5a;
        CHECK(pwrite(fd, &b, 1, (off_t) off) == 1);
        close(fd);
    }
    free(segs);
}

static void test_a_late_withdrawal_shows_the_same_timeline_read_from_its_first_record(void)
{
    char err[300];
    journal_t *j = s_setup();
    if (!j)
        return;
    int i = s_history(j, 800, 6, 25);
    s_withdrawal(j, 0, 2, i++);   /* the early one's last record, late */
    uint64_t last = journal_durable_lsn(j);
    journal_destroy(&j);
    CHECK_EQ_INT(checkpoint_write(s_dir, &s_cfg, last, NULL, err, sizeof err), 0);

    withdrawal_view_t w[2];
    for (int k = 0; k < 2; k++)
        CHECK_EQ_INT(s_view(s_id[k], &w[k]), 0);
    CHECK_EQ_INT(w[0].first_lsn, 1);
    CHECK(w[1].first_lsn > 800 && w[1].last_lsn > w[1].first_lsn);
    CHECK_EQ_INT(w[0].last_lsn, last);

    static char before[2][2][1 << 15], after[1 << 15], expect[1 << 15];
    jbuf_t full[2], ranged;
    for (int k = 0; k < 2; k++) {
        for (int json = 0; json < 2; json++) {
            CHECK_EQ_INT(s_show(s_id[k], json, before[k][json], sizeof before[k][json]), 0);
            CHECK_EQ_INT(s_scan_all(s_id[k], json, w[k].last_lsn, expect, sizeof expect), 0);
            CHECK(strstr(before[k][json], expect) != NULL);   /* text: after the "now:" line */
        }
        jbuf_init(&full[k]);
        CHECK_EQ_INT(admin_timeline_json(s_dir, s_id[k], 0, 0, 0, &full[k]), k ? 6 : 3);
        jbuf_init(&ranged);
        CHECK_EQ_INT(admin_timeline_json(s_dir, s_id[k], w[k].first_lsn, w[k].last_lsn, 0, &ranged), k ? 6 : 3);
        CHECK(ranged.len == full[k].len && memcmp(ranged.data, full[k].data, ranged.len) == 0);
        jbuf_free(&ranged);
    }

    /* the history before the late withdrawal's first record can no longer be read: a scan from LSN 1
     * fails, its timeline (CLI and panel) is the same as before */
    s_damage_lsn_3();
    CHECK(s_scan_all(s_id[1], 1, w[1].last_lsn, expect, sizeof expect) != 0);
    for (int json = 0; json < 2; json++) {
        CHECK_EQ_INT(s_show(s_id[1], json, after, sizeof after), 0);
        CHECK_EQ_INT(strcmp(after, before[1][json]), 0);
    }
    jbuf_init(&ranged);
    CHECK_EQ_INT(admin_timeline_json(s_dir, s_id[1], w[1].first_lsn, w[1].last_lsn, 0, &ranged), 6);
    CHECK(ranged.len == full[1].len && memcmp(ranged.data, full[1].data, ranged.len) == 0);
    jbuf_free(&ranged);
    /* the panel's cap still counts from the first record */
    jbuf_init(&ranged);
    CHECK_EQ_INT(admin_timeline_json(s_dir, s_id[1], w[1].first_lsn, w[1].last_lsn, 2, &ranged), 2);
    jbuf_free(&ranged);
    for (int k = 0; k < 2; k++)
        jbuf_free(&full[k]);
    support_tmp_rmrf(s_dir);
}

static void s_view_json(void *arg, const withdrawal_view_t *w)
{
    withdrawals_view_json(arg, w);
    jbuf_puts(arg, "\n");
}

/* A snapshot whose withdrawals section has layout 1 (written before each withdrawal's first LSN was
 * carried in it) is read: the start stands on it, the withdrawals list as before, and each
 * withdrawal's first LSN is 1 (unknown: its timeline read from the journal's start, also once a
 * record after the snapshot is applied), so every timeline (CLI text and JSON, the panel's) is the
 * same as from a snapshot of the newest layout. */
static void test_a_snapshot_of_withdrawals_layout_1_shows_the_same_timelines(void)
{
    char err[300];
    journal_t *j = s_setup();
    if (!j)
        return;
    int i = s_history(j, 200, 4, 10);
    uint64_t lsn = journal_durable_lsn(j);
    CHECK_EQ_INT(checkpoint_write(s_dir, &s_cfg, lsn, NULL, err, sizeof err), 0);
    s_withdrawal(j, 1, 4, i++);   /* after the snapshot: the late one's next record, the early one's last */
    s_withdrawal(j, 0, 2, i++);
    journal_destroy(&j);

    static char before[2][2][1 << 15], after[1 << 15];
    jbuf_t panel[2], list, now;
    jbuf_init(&list);
    withdrawals_t *wd = checkpoint_restore(s_dir, &checkpoint_withdrawals, &s_cfg, 0, NULL, err, sizeof err);
    CHECK(wd != NULL);
    if (!wd)
        return;
    withdrawals_each(wd, 0, 0, s_view_json, &list);
    withdrawals_destroy(&wd);
    withdrawal_view_t w;
    for (int k = 0; k < 2; k++) {
        for (int json = 0; json < 2; json++)
            CHECK_EQ_INT(s_show(s_id[k], json, before[k][json], sizeof before[k][json]), 0);
        CHECK_EQ_INT(s_view(s_id[k], &w), 0);
        jbuf_init(&panel[k]);
        CHECK_EQ_INT(admin_timeline_json(s_dir, s_id[k], w.first_lsn, w.last_lsn, 0, &panel[k]), k ? 5 : 3);
    }

    /* the section as layout 1 wrote it */
    wd = checkpoint_restore(s_dir, &checkpoint_withdrawals, &s_cfg, lsn, NULL, err, sizeof err);
    CHECK(wd != NULL);
    snap_pk_t old;
    snap_pk_save_init(&old);
    CHECK(wd && withdrawals_save_layout(wd, &old, 1) == 0);
    CHECK(wd && withdrawals_save_layout(wd, &old, 99) == -1);   /* a layout it does not know: none */
    withdrawals_destroy(&wd);
    uint32_t layout = 0;
    if (old.len >= sizeof layout)
        memcpy(&layout, old.buf, sizeof layout);
    CHECK_EQ_INT(layout, 1);
    CHECK_EQ_INT(support_snapshot_replace(s_dir, lsn, "withdrawals", old.buf, old.len), 0);
    snap_pk_free(&old);

    checkpoint_info_t info;
    wd = checkpoint_restore(s_dir, &checkpoint_withdrawals, &s_cfg, 0, &info, err, sizeof err);
    CHECK(wd != NULL);
    if (!wd)
        return;
    CHECK_EQ_INT(info.snapshot_lsn, lsn);   /* stood on it, not on the whole journal */
    CHECK_EQ_INT(info.fallbacks, 0);
    jbuf_init(&now);
    withdrawals_each(wd, 0, 0, s_view_json, &now);
    CHECK(now.len == list.len && memcmp(now.data, list.data, now.len) == 0);
    withdrawals_destroy(&wd);
    for (int k = 0; k < 2; k++) {
        CHECK_EQ_INT(s_view(s_id[k], &w), 0);
        CHECK_EQ_INT(w.first_lsn, 1);
        for (int json = 0; json < 2; json++) {
            CHECK_EQ_INT(s_show(s_id[k], json, after, sizeof after), 0);
            CHECK_EQ_INT(strcmp(after, before[k][json]), 0);
        }
        jbuf_t ranged;
        jbuf_init(&ranged);
        CHECK_EQ_INT(admin_timeline_json(s_dir, s_id[k], w.first_lsn, w.last_lsn, 0, &ranged), k ? 5 : 3);
        CHECK(ranged.len == panel[k].len && memcmp(ranged.data, panel[k].data, ranged.len) == 0);
        jbuf_free(&ranged);
        jbuf_free(&panel[k]);
    }
    jbuf_free(&now);
    jbuf_free(&list);
    support_tmp_rmrf(s_dir);
}

int main(void)
{
    RUN(test_a_late_withdrawal_shows_the_same_timeline_read_from_its_first_record);
    RUN(test_a_snapshot_of_withdrawals_layout_1_shows_the_same_timelines);
    return check_done();
}
