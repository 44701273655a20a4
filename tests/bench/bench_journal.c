/* bench_journal.c — how fast the journal is on this machine.
 *
 *   raw fdatasync           200-byte write + fdatasync in a loop, one thread: the disk's own rate
 *   append, N threads       N threads each journal_append() a ~200-byte record and wait, in a loop
 *   submit 16 + wait once   N threads each queue 16 records, then wait once for the last
 *   replay                  1,000,000 records read back with a journal reader (checksums checked)
 *
 * Columns: records per second; records per fdatasync (the batch size group commit achieved);
 * fdatasyncs per second; CPU microseconds (all threads) per record. With N appenders that each wait
 * for their record, a batch holds at most N records, so appends/s <= N x the disk's fdatasync rate:
 * compare "syncs/s" with the raw line to tell a disk-bound figure from a CPU-bound one.
 * The journal lives under $KASA_BENCH_DIR (default build/bench-data); BENCH_SECONDS sets the time
 * per figure (default 3). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "journal/fio.h"
#include "journal/journal.h"

#define REC_BYTES 200

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int s_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st; (void) flag; (void) ftw;
    remove(path);
    return 0;
}

static void s_rm_journal(const char *dir)
{
    nftw(dir, s_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* CPU seconds (user + system) this process has used so far. */
static double s_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double) ru.ru_utime.tv_sec + (double) ru.ru_utime.tv_usec / 1e6 + (double) ru.ru_stime.tv_sec +
           (double) ru.ru_stime.tv_usec / 1e6;
}

static double s_raw_fdatasync(const char *base, double seconds)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/raw-fdatasync.tmp", base);
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd < 0)
        return 0;
    char buf[REC_BYTES];
    memset(buf, 'x', sizeof buf);
    long n = 0;
    double t0 = s_now(), t;
    do {
        if (write(fd, buf, sizeof buf) != (ssize_t) sizeof buf || fdatasync(fd) != 0)
            break;
        n++;
    } while ((t = s_now()) - t0 < seconds);
    close(fd);
    unlink(path);
    return (double) n / (s_now() - t0);
}

typedef struct {
    journal_t *j;
    atomic_int *stop;
    int per_wait;          /* records submitted per wait: 1 = journal_append */
    long done;
    int errors;
} worker_t;

static void *s_worker(void *arg)
{
    worker_t *w = arg;
    uint8_t rec[REC_BYTES];
    memset(rec, 'r', sizeof rec);
    while (!atomic_load(w->stop)) {
        if (w->per_wait == 1) {
            if (journal_append(w->j, rec, sizeof rec) == 0) { w->errors++; break; }
            w->done++;
            continue;
        }
        uint64_t last = 0;
        for (int i = 0; i < w->per_wait; i++)
            if ((last = journal_submit(w->j, rec, sizeof rec)) == 0)
                break;
        if (last == 0 || journal_wait(w->j, last) != 0) { w->errors++; break; }
        w->done += w->per_wait;
    }
    return NULL;
}

/* Durable appends per second with nthreads appenders; *per_sync gets records per fdatasync,
 * *syncs_s fdatasyncs per second and *cpu_us CPU microseconds (all threads) per record. */
static double s_append_rate(const char *base, int nthreads, int per_wait, double seconds, double *per_sync,
                            double *syncs_s, double *cpu_us)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/journal-append", base);
    s_rm_journal(dir);
    char err[256];
    journal_t *j = journal_open(dir, NULL, err, sizeof err);
    if (!j) {
        fprintf(stderr, "journal_open: %s\n", err);
        return 0;
    }
    atomic_int stop = 0;
    worker_t *w = calloc((size_t) nthreads, sizeof *w);
    pthread_t *th = calloc((size_t) nthreads, sizeof *th);
    fio_reset();
    double t0 = s_now(), c0 = s_cpu();
    for (int i = 0; i < nthreads; i++) {
        w[i] = (worker_t) { .j = j, .stop = &stop, .per_wait = per_wait };
        pthread_create(&th[i], NULL, s_worker, &w[i]);
    }
    struct timespec ts = { (time_t) seconds, (long) ((seconds - (double) (time_t) seconds) * 1e9) };
    nanosleep(&ts, NULL);
    atomic_store(&stop, 1);
    long total = 0;
    int errors = 0;
    for (int i = 0; i < nthreads; i++) {
        pthread_join(th[i], NULL);
        total += w[i].done;
        errors += w[i].errors;
    }
    double dt = s_now() - t0;
    uint64_t syncs = fio_count(FIO_FSYNC);
    *per_sync = syncs ? (double) total / (double) syncs : 0;
    *syncs_s = (double) syncs / dt;
    *cpu_us = total ? (s_cpu() - c0) * 1e6 / (double) total : 0;
    journal_destroy(&j);
    free(w);
    free(th);
    s_rm_journal(dir);
    if (errors)
        fprintf(stderr, "%d appenders saw an error\n", errors);
    return (double) total / dt;
}

static int s_replay(const char *base, long nrec, double *rec_s, double *mb_s, double *fill_s)
{
    char dir[4200], err[256];
    snprintf(dir, sizeof dir, "%s/journal-replay", base);
    s_rm_journal(dir);
    journal_t *j = journal_open(dir, NULL, err, sizeof err);
    if (!j) {
        fprintf(stderr, "journal_open: %s\n", err);
        return -1;
    }
    uint8_t rec[REC_BYTES];
    memset(rec, 'p', sizeof rec);
    double t0 = s_now();
    uint64_t last = 0;
    for (long i = 0; i < nrec; i++) {
        memcpy(rec, &i, sizeof i);
        if ((last = journal_submit(j, rec, sizeof rec)) == 0)
            return -1;
        if ((i + 1) % 4096 == 0 && journal_wait(j, last) != 0)
            return -1;
    }
    if (journal_wait(j, last) != 0)
        return -1;
    *fill_s = (double) nrec / (s_now() - t0);
    journal_destroy(&j);

    t0 = s_now();
    journal_reader_t *r = journal_reader_open(dir, 1, err, sizeof err);
    if (!r)
        return -1;
    journal_entry_t e;
    long n = 0;
    uint64_t bytes = 0;
    int rc;
    while ((rc = journal_reader_next(r, &e)) == 1) {
        n++;
        bytes += e.len + 24;
    }
    double dt = s_now() - t0;
    if (rc < 0)
        fprintf(stderr, "reader: %s\n", journal_reader_error(r));
    journal_reader_destroy(&r);
    s_rm_journal(dir);
    if (n != nrec) {
        fprintf(stderr, "replay read %ld records, expected %ld\n", n, nrec);
        return -1;
    }
    *rec_s = (double) n / dt;
    *mb_s = (double) bytes / dt / 1e6;
    return 0;
}

int main(void)
{
    const char *base = getenv("KASA_BENCH_DIR");
    if (!base || !*base)
        base = "build/bench-data";
    mkdir(base, 0755);
    double seconds = getenv("BENCH_SECONDS") ? atof(getenv("BENCH_SECONDS")) : 3.0;
    if (seconds <= 0)
        seconds = 3.0;

    printf("%-36s %12s %10s %10s %8s  %s\n", "journal (200-byte records)", "per second", "rec/sync",
           "syncs/s", "cpu us", "notes");
    printf("%-36s %12.0f %10s %10s %8s  %s\n", "raw write+fdatasync, 1 thread", s_raw_fdatasync(base, seconds),
           "1", "", "", "the disk's own rate, measured now");
    int threads[] = { 1, 32, 64, 128 };
    for (size_t i = 0; i < sizeof threads / sizeof threads[0]; i++) {
        double per_sync, syncs_s, cpu_us, rate = s_append_rate(base, threads[i], 1, seconds, &per_sync, &syncs_s, &cpu_us);
        char label[64];
        snprintf(label, sizeof label, "append+wait, %d thread%s", threads[i], threads[i] > 1 ? "s" : "");
        printf("%-36s %12.0f %10.1f %10.0f %8.1f  %s\n", label, rate, per_sync, syncs_s, cpu_us,
               threads[i] < 32 ? "" : rate >= 100000 ? "target 100000: met" : "target 100000: MISSED");
        fflush(stdout);
    }
    for (int t = 32; t <= 128; t *= 2) {
        double per_sync, syncs_s, cpu_us, rate = s_append_rate(base, t, 16, seconds, &per_sync, &syncs_s, &cpu_us);
        char label[64];
        snprintf(label, sizeof label, "submit 16 + wait once, %d threads", t);
        printf("%-36s %12.0f %10.1f %10.0f %8.1f  %s\n", label, rate, per_sync, syncs_s, cpu_us,
               rate >= 100000 ? "target 100000: met" : "target 100000: MISSED");
        fflush(stdout);
    }
    double rec_s, mb_s, fill_s;
    if (s_replay(base, 1000000, &rec_s, &mb_s, &fill_s) != 0) {
        printf("replay: FAILED\n");
        return 1;
    }
    printf("%-36s %12.0f %10s %10s %8s  %s\n", "fill 1,000,000 (1 thread, submit)", fill_s, "", "", "",
           "waits every 4096 records");
    printf("%-36s %12.0f %10s %10s %8s  %.0f MB/s, target 1000000 records/s: %s\n", "replay 1,000,000 records",
           rec_s, "", "", "", mb_s, rec_s >= 1000000 ? "met" : "MISSED");
    return 0;
}
