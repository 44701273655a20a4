/* test_finished.c — finished deposits out of memory, through a running kasa: once a snapshot has
 * indexed a credited deposit and kasa has let go of it, a repeat of its webhook (before and after a
 * restart from that snapshot) is answered 200 and credits nothing; the investor's history and
 * `kasa deposit show` still show it after its journal segment moved to the archive; after the archive
 * is pruned, `kasa deposit list|show`, `kasa replay` and `kasa reconcile` still know it. */
#include <dirent.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tests/check.h"
#include "tests/integration/harness.h"

#define ADDR "TFinishedAddr00000000000000000001"   /* -> 100001 */

static h_env_t s_env;
static int s_ready;
static h_tx_t s_first;       /* the deposit repeated */
static char *s_first_body;   /* its completed webhook, as Cobo would send it again */

/* How many times kasa's log has a line holding both a and b. */
static int s_log_lines(const char *a, const char *b)
{
    char *log = h_read_file(s_env.kasa_log, NULL);
    int n = 0;
    for (char *line = log ? strtok(log, "\n") : NULL; line; line = strtok(NULL, "\n"))
        n += strstr(line, a) && strstr(line, b);
    free(log);
    return n;
}

/* Waits until kasa has let go of finished deposits once more than `before` times. */
static int s_wait_evicted(int before)
{
    int64_t end = h_now_ms() + 15000;
    while (h_now_ms() < end) {
        if (s_log_lines("event=registry.finished_forgotten", "evicted=1") > before)
            return 1;
        h_sleep_ms(50);
    }
    return 0;
}

static int s_deposit(h_tx_t *tx, const char *amount)
{
    *tx = h_tx(ADDR, amount, "TRON_USDT");
    return h_sim_deposit(&s_env, tx, 1, 0, 0) == 0 &&
           h_wait_state(&s_env, tx->tx_id, DEPOSIT_NOTIFIED, 20000) == DEPOSIT_NOTIFIED;
}

static void s_repeat_is_a_repeat(void)
{
    uint64_t records = h_journal_records(s_env.journal);
    h_resp_t r = h_post_webhook(&s_env, s_first_body, strlen(s_first_body));
    CHECK_EQ_INT(r.status, 200);
    h_resp_free(&r);
    h_sleep_ms(500);
    CHECK_EQ_INT(h_journal_records(s_env.journal), records);   /* nothing journaled */
    int total = 0;
    CHECK_EQ_INT(h_deals_of(&s_env, 100001, 9950, &total), 1);  /* 100 at fee 0.50: credited once */
}

static void test_a_repeat_webhook_of_a_deposit_out_of_memory_gets_200_and_credits_nothing(void)
{
    CHECK(s_ready);
    int before = s_log_lines("event=registry.finished_forgotten", "evicted=1");
    CHECK(s_deposit(&s_first, "100"));
    CHECK(s_wait_evicted(before));   /* a snapshot indexed it and kasa let go of it */
    jbuf_t b;
    jbuf_init(&b);
    h_tx_t tx = s_first;
    snprintf(tx.status, sizeof tx.status, "Completed");
    tx.confirmations = tx.threshold = 20;
    h_webhook_body(&b, "f1f1f1f1-0000-4000-8000-000000000001", "wallets.transaction.succeeded", &tx);
    s_first_body = strdup(b.data);
    jbuf_free(&b);
    s_repeat_is_a_repeat();
    /* a start from that snapshot has it only in the index: the same answer */
    CHECK_EQ_INT(h_kasa_stop(&s_env), 0);
    CHECK_EQ_INT(h_kasa_start(&s_env), 0);
    s_repeat_is_a_repeat();
}

/* The process= of kasa's last event=snapshot.written line, or 0. */
static pid_t s_snapshot_process(void)
{
    char *log = h_read_file(s_env.kasa_log, NULL);
    pid_t pid = 0;
    for (char *line = log ? strtok(log, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        const char *p = strstr(line, "event=snapshot.written") ? strstr(line, " process=") : NULL;
        if (p)
            pid = (pid_t) atoi(p + 9);
    }
    free(log);
    return pid;
}

/* The pid of kasa's child running `kasa journal snapshot-process`, or 0. */
static pid_t s_snapshot_child(void)
{
    char path[96];
    snprintf(path, sizeof path, "/proc/%d/task", (int) s_env.kasa_pid);
    DIR *d = opendir(path);
    pid_t found = 0;
    for (struct dirent *e; d && !found && (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        char file[400];
        snprintf(file, sizeof file, "/proc/%d/task/%s/children", (int) s_env.kasa_pid, e->d_name);
        char *kids = h_read_file(file, NULL);
        for (char *k = kids ? strtok(kids, " \n") : NULL; k && !found; k = strtok(NULL, " \n")) {
            char cmd[400];
            snprintf(cmd, sizeof cmd, "/proc/%s/cmdline", k);
            size_t len = 0;
            char *args = h_read_file(cmd, &len);
            for (size_t at = 0; args && at < len && !found; at += strlen(args + at) + 1)
                if (strcmp(args + at, "snapshot-process") == 0)
                    found = (pid_t) atoi(k);
            free(args);
        }
        free(kids);
    }
    if (d)
        closedir(d);
    return found;
}

/* How many of process pid's open files are sockets (what "socket:"), or runs of the index of finished
 * deposits (what ".idx"). */
static int s_open_files_of(pid_t pid, const char *what)
{
    char path[96];
    snprintf(path, sizeof path, "/proc/%d/fd", (int) pid);
    DIR *d = opendir(path);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        char link[400], to[256];
        snprintf(link, sizeof link, "%s/%s", path, e->d_name);
        ssize_t len = readlink(link, to, sizeof to - 1);
        if (len > 0) {
            to[len] = '\0';
            n += strcmp(what, "socket:") == 0 ? strncmp(to, what, 7) == 0
                 : len > 4 && strcmp(to + len - 4, what) == 0 && strstr(to, "/finished/") != NULL;
        }
    }
    if (d)
        closedir(d);
    return n;
}

/* The snapshot process is started with kasa, ahead of its first snapshot, at the idle policy, and
 * loads the newest snapshot (its index's runs open) before it is asked for one: its exec, dynamic
 * loading and the checking of the index are not in the first snapshot. It holds none of kasa's
 * sockets. */
static void test_the_snapshot_process_starts_with_kasa_and_loads_the_newest_snapshot_at_once(void)
{
    CHECK(s_ready);
    if (s_env.kasa_pid)
        CHECK_EQ_INT(h_kasa_stop(&s_env), 0);
    int written = s_log_lines("event=snapshot.written", "process=");
    CHECK_EQ_INT(h_kasa_start(&s_env), 0);
    pid_t proc = 0;
    for (int64_t end = h_now_ms() + 5000; !(proc = s_snapshot_child()) && h_now_ms() < end;)
        h_sleep_ms(20);
    CHECK(proc > 0);
    CHECK_EQ_INT(sched_getscheduler(proc), SCHED_IDLE);
    for (int64_t end = h_now_ms() + 10000; proc && !s_open_files_of(proc, ".idx") && h_now_ms() < end;)
        h_sleep_ms(20);
    CHECK(proc && s_open_files_of(proc, ".idx") > 0);   /* the earlier tests' deposits are in the index */
    CHECK_EQ_INT(s_log_lines("event=snapshot.written", "process="), written);   /* none written yet */
    CHECK_EQ_INT(s_open_files_of(proc, "socket:"), 0);
    CHECK(s_open_files_of(s_env.kasa_pid, "socket:") > 0);   /* kasa has them: they were not passed on */
}

/* Snapshots are written by a process of their own (no lock, heap or page table shared with the
 * webhooks' threads), at the idle scheduling policy and the lowest best-effort I/O level; one killed
 * is replaced at the next snapshot, nothing lost; kasa's stop ends it. */
static void test_snapshots_are_written_by_a_process_of_their_own_and_a_killed_one_is_replaced(void)
{
    CHECK(s_ready);
    if (!s_env.kasa_pid)   /* the tests before it stopped it */
        CHECK_EQ_INT(h_kasa_start(&s_env), 0);
    h_tx_t tx;
    int written = s_log_lines("event=snapshot.written", "process=");
    CHECK(s_deposit(&tx, "7"));
    int64_t end = h_now_ms() + 15000;
    while (s_log_lines("event=snapshot.written", "process=") <= written && h_now_ms() < end)
        h_sleep_ms(50);
    pid_t first = s_snapshot_process();
    CHECK(first > 0 && first != s_env.kasa_pid);
    CHECK_EQ_INT(sched_getscheduler(first), SCHED_IDLE);
    /* and the best-effort I/O class at its lowest level, named: not the idle class the kernel would
     * give a thread of the idle policy (its writes of blocks the journal shares waited behind the
     * journal's, and the journal's fdatasync behind them) */
    CHECK_EQ_INT(syscall(SYS_ioprio_get, 1 /* IOPRIO_WHO_PROCESS */, first), 2 << 13 | 7);
    CHECK_EQ_INT(kill(first, SIGKILL), 0);
    written = s_log_lines("event=snapshot.written", "process=");
    CHECK(s_deposit(&tx, "8"));
    end = h_now_ms() + 15000;
    while (s_log_lines("event=snapshot.written", "process=") <= written && h_now_ms() < end)
        h_sleep_ms(50);
    pid_t second = s_snapshot_process();
    CHECK(second > 0 && second != first && second != s_env.kasa_pid);
    CHECK(s_log_lines("event=snapshot.process_lost", "killed by signal 9") >= 1);
    CHECK_EQ_INT(s_log_lines("event=snapshot.failed", ""), 0);
    CHECK_EQ_INT(h_kasa_stop(&s_env), 0);
    end = h_now_ms() + 5000;
    while (kill(second, 0) == 0 && h_now_ms() < end)
        h_sleep_ms(20);
    CHECK(kill(second, 0) != 0);   /* gone with kasa */
    int total = 0;
    CHECK_EQ_INT(h_deals_of(&s_env, 100001, 750, &total), 1);   /* 8 at fee 0.50: credited once */
}

static void test_history_and_deposit_show_find_it_after_its_segment_is_archived(void)
{
    CHECK(s_ready);
    /* the restart began a new segment; the next snapshot retires the first one */
    int before = s_log_lines("event=registry.finished_forgotten", "evicted=1");
    h_tx_t second;
    CHECK(s_deposit(&second, "40"));
    CHECK(s_wait_evicted(before));
    CHECK(s_log_lines("event=journal.archived", "segments=") > 0);
    char sess[300] = "", csrf[80] = "";
    h_cresp_t r = h_call(s_env.kasa_url, "POST", "/api/login", NULL, NULL,
                         "{\"login\":\"100001\",\"password\":\"" H_MT5_PW "\"}", NULL);
    CHECK_EQ_INT(r.status, 200);
    h_header(&r, "Set-Cookie", sess, sizeof sess);
    h_json_str(r.body, "csrf", csrf, sizeof csrf);
    h_cresp_free(&r);
    char cookie[100];
    const char *v = strstr(sess, "kasa_sid=");
    snprintf(cookie, sizeof cookie, "kasa_sid=%.64s", v ? v + 9 : "");
    r = h_call(s_env.kasa_url, "GET", "/api/deposits", cookie, NULL, NULL, NULL);
    CHECK_EQ_INT(r.status, 200);
    const char *a = r.body ? strstr(r.body, second.tx_id) : NULL, *b = r.body ? strstr(r.body, s_first.tx_id) : NULL;
    CHECK(a != NULL && b != NULL && a < b);   /* both, newest first */
    CHECK(r.body && strstr(r.body, "\"credited\":\"99.50\"") != NULL);
    h_cresp_free(&r);
    char path[160];
    snprintf(path, sizeof path, "/api/deposits/%s", s_first.tx_id);
    r = h_call(s_env.kasa_url, "GET", path, cookie, NULL, NULL, NULL);
    CHECK_EQ_INT(r.status, 200);
    CHECK(r.body && strstr(r.body, "\"state\":\"NOTIFIED\"") != NULL);
    h_cresp_free(&r);
    char *out = NULL;
    CHECK_EQ_INT(h_kasa_cmd(&s_env, &out, "deposit", "show", s_first.tx_id, "--config", s_env.config, NULL), 0);
    CHECK(out && strstr(out, s_first.tx_id) && strstr(out, "NOTIFIED"));
    free(out);
    s_repeat_is_a_repeat();
}

static void test_clean_shutdown_and_the_journal_verifies(void)
{
    CHECK(s_ready);
    CHECK_EQ_INT(h_kasa_stop(&s_env), 0);
    char *out = NULL;
    CHECK_EQ_INT(h_kasa_cmd(&s_env, &out, "journal", "verify", s_env.journal, NULL), 0);
    free(out);
}

/* After `kasa journal archive --prune-before` deleted the records of the first deposits, the offline
 * commands still know them from the snapshot's index of finished deposits: list, show, replay, and
 * reconcile agrees (their MT5 deals are still kasa's). */
static void test_after_the_archive_is_pruned_the_offline_commands_still_know_old_deposits(void)
{
    CHECK(s_ready);
    char *out = NULL, day[16];
    time_t tomorrow = time(NULL) + 86400;
    struct tm tm;
    strftime(day, sizeof day, "%Y-%m-%d", gmtime_r(&tomorrow, &tm));
    CHECK_EQ_INT(h_kasa_cmd(&s_env, &out, "journal", "archive", s_env.journal, "--prune-before", day, NULL), 0);
    CHECK(out && strstr(out, "pruned: ") != NULL);
    free(out);
    out = NULL;
    CHECK_EQ_INT(h_kasa_cmd(&s_env, &out, "deposit", "list", "--config", s_env.config, NULL), 0);
    CHECK(out && strstr(out, s_first.tx_id) && strstr(out, "NOTIFIED") && strstr(out, "2 deposits"));
    free(out);
    out = NULL;
    CHECK_EQ_INT(h_kasa_cmd(&s_env, &out, "deposit", "list", "--login", "100001", "--json", "--config", s_env.config,
                            NULL), 0);
    CHECK(out && strstr(out, s_first.tx_id));
    free(out);
    out = NULL;
    CHECK_EQ_INT(h_kasa_cmd(&s_env, &out, "deposit", "show", s_first.tx_id, "--config", s_env.config, NULL), 0);
    CHECK(out && strstr(out, s_first.tx_id) && strstr(out, "NOTIFIED"));
    free(out);
    out = NULL;
    CHECK_EQ_INT(h_kasa_cmd(&s_env, &out, "replay", s_env.journal, "--all", NULL), 0);
    CHECK(out && strstr(out, s_first.tx_id) && strstr(out, "2 shown"));
    free(out);
    out = NULL;
    int rc = h_kasa_cmd(&s_env, &out, "reconcile", "--from", "-1h", "--to", "-0m", "--config", s_env.config, NULL);
    CHECK_EQ_INT(rc, 0);
    CHECK(out && strstr(out, "the books agree"));
    if (rc != 0)
        h_log("reconcile -> %d: %s", rc, out ? out : "");
    free(out);
}

int main(void)
{
    int env_ok = h_env_init(&s_env, "finished") == 0;
    s_env.keep_ports = 1;   /* the Cobo simulator keeps sending to the same port after a restart */
    if (env_ok && h_sims_start(&s_env, NULL) == 0 &&
        h_config_write(&s_env, "KASA_SNAPSHOT_EVERY_RECORDS=1\n") == 0 && h_kasa_start(&s_env) == 0)
        s_ready = h_link(&s_env, ADDR, 100001) == 0;
    if (!s_ready)
        h_log("setup failed; logs in %s", s_env.dir);
    RUN(test_a_repeat_webhook_of_a_deposit_out_of_memory_gets_200_and_credits_nothing);
    RUN(test_history_and_deposit_show_find_it_after_its_segment_is_archived);
    RUN(test_clean_shutdown_and_the_journal_verifies);
    RUN(test_after_the_archive_is_pruned_the_offline_commands_still_know_old_deposits);
    RUN(test_the_snapshot_process_starts_with_kasa_and_loads_the_newest_snapshot_at_once);
    RUN(test_snapshots_are_written_by_a_process_of_their_own_and_a_killed_one_is_replaced);
    free(s_first_body);
    h_env_finish(&s_env, check_failed_ > 0);
    return check_done();
}
