/* journal.c — the writer: open (scan, cut a torn tail, lock), group commit, rotation, failure.
 *
 * Group commit: appenders copy their record into the filling buffer under one mutex (the payload is
 * checksummed before the lock is taken; only 20 header bytes are checksummed under it) and are given
 * the next LSN. One flusher thread swaps the filling buffer with the spare one, writes the whole
 * batch with one write(2) and one fdatasync, publishes the new durable LSN and wakes every waiter at
 * once through a futex on a commit counter, and then calls the commit callback for each record (so
 * the monitor feed's and the live updates' decoding is not between a record's fdatasync and its
 * answer). Waiters never take the mutex to learn that they are durable, so a commit does not cause a
 * convoy of 32..128 threads on the mutex. While one batch is on its way to the disk the next one fills.
 *
 * Pre-sized segments: the flusher keeps zeros written ahead of its records (s_zero_ahead) and
 * writes each batch over them at its offset, so most fdatasyncs find the file's size and blocks
 * already durable and write the data alone; jformat.h says how a reader tells zeros from records.
 *
 * Why this shape (measured with tests/bench/bench_journal.c on the 2-core machine): with 32 appenders
 * that each wait for their record, a batch can hold at most 32 records, so appends/s is bounded by
 * 32 x the disk's fdatasync rate. A first version that woke every waiter on one futex word per
 * commit (so half of them woke for nothing: their records were in the next batch) and used a plain
 * mutex reached ~69,000/s at 15.8 records per fdatasync; one futex word per batch parity plus an
 * adaptive mutex reached ~164,000/s at 29.8 records per fdatasync. A profile of the 32-thread case
 * then shows the time in futex sleep/wake (a context switch pair per record), not in the mutex;
 * a flusher thread adds one wake per batch (~1/30 of them), which is why it is kept over a
 * leader/follower hand-off. Callers that can queue several records (journal_submit, then one
 * journal_wait) avoid the per-record sleep and go several times faster. journal_wait for the record
 * its own thread submitted last sleeps on that record's batch word too (the registry's
 * submit-then-wait path), so a commit does not wake the waiters of the batch still filling;
 * measured on kasa serve under the side-by-side load (bench_ingest.sh (g)), futex calls per webhook
 * went from about 3.4 to 1.8 and context switches from 4.8 to 3.4. Webhooks now wait without a
 * thread (journal_when_durable: the flusher calls them after the wake, before the commit callbacks),
 * which took them to 0.36 and about 1.
 *
 * Failure: if a write (short or not), an fdatasync or a rotation step fails, the journal is failed
 * for good: the batch in flight and everything queued is never reported durable, every waiter and
 * every later append gets an error. Reopening cuts whatever partial batch reached the file. */
#include "journal/journal.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "journal/fio.h"
#include "journal/jformat.h"
#include "schema/probe.h"

#define JOURNAL_DEFAULT_SEGMENT (64ull << 20)
#define JOURNAL_DEFAULT_BATCH   ((size_t) 4 << 20)
/* Pre-sizing: zeros are kept written this far ahead of the records (up to segment_bytes), topped up
 * when less than JOURNAL_ZERO_AHEAD - JOURNAL_ZERO_STEP is left, in the same fdatasync as the batch
 * that needs it. Small steps: the fdatasync that carries them pays for their bytes (on this machine's
 * virtual disk a megabyte of zeros made that fdatasync take 10-12 ms, every ~0.5 MB of records). */
#define JOURNAL_ZERO_AHEAD      ((uint64_t) 256 << 10)
#define JOURNAL_ZERO_STEP       ((uint64_t) 64 << 10)

/* A journal_when_durable registration. */
typedef struct {
    uint64_t lsn;
    journal_durable_fn *fn;
    void *arg;
} s_notice_t;

struct journal_t {
    char *dir;
    journal_opts_t opts;
    int lock_fd;

    /* flusher-owned */
    int seg_fd;
    uint64_t seg_size;             /* where the next batch goes: the end of the segment's records */
    uint64_t zeroed_end;           /* the file's size: seg_size..zeroed_end holds zeros           */
    uint32_t written_crc;          /* checksum of the last record written to a segment */
    int wrote;                     /* a batch was written and synced since open (read after the join) */
    pthread_t flusher;
    int flusher_started;

    /* under mu */
    pthread_mutex_t mu;
    pthread_cond_t work_cv;        /* the flusher waits here for records           */
    pthread_cond_t space_cv;       /* appenders wait here when the buffer is full  */
    uint8_t *fill, *spare;
    size_t fill_len, cap;
    uint32_t fill_count;           /* records in the filling batch: the next one's batch index */
    uint64_t next_lsn;
    uint32_t last_crc;             /* checksum of the last record queued           */
    int flusher_idle;
    int space_waiters;
    int closing;
    journal_commit_fn *cb;
    void *cb_arg;
    char fail_reason[200];

    /* read without mu */
    _Atomic uint64_t durable_lsn;
    _Atomic uint64_t queued_lsn;   /* highest LSN handed out */
    _Atomic uint32_t commit_seq;   /* bumped (and futex-woken) at every commit and on failure */
    _Atomic uint32_t batch_seq[2]; /* batch_seq[b & 1] is bumped and woken when batch b commits */
    atomic_int generic_waiters;    /* threads sleeping on commit_seq (journal_wait)  */
    uint64_t fill_batch;           /* (under mu) number of the batch now filling      */
    atomic_int failed;
    /* journal_hold: holders now, releases so far, and whether the flusher waits for one */
    atomic_int holds;
    _Atomic uint32_t release_seq;
    atomic_int flusher_held;
    /* journal_when_durable's registrations not yet durable (under notify_mu) */
    pthread_mutex_t notify_mu;
    s_notice_t *notices;
    size_t notice_count, notice_cap;
    probe_hist_t fsync_us;         /* each batch's fdatasync, µs (for /metrics)       */
    probe_hist_t batch_records;    /* records per batch                               */
};

static void s_futex_wait(_Atomic uint32_t *addr, uint32_t seen)
{
    syscall(SYS_futex, (uint32_t *) addr, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
}

static void s_futex_wake_all(_Atomic uint32_t *addr)
{
    syscall(SYS_futex, (uint32_t *) addr, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

/* Creates segment first_lsn durably: header into a .tmp file, fdatasync, rename, fsync of the
 * directory. Returns the open fd positioned at the end, or -1 with a reason. */
static int s_create_segment(const char *dir, uint64_t first_lsn, uint32_t prev_crc, char *err, size_t errlen)
{
    char name[JF_NAME_MAX], path[4096], tmp[4200];
    uint8_t hdr[JF_SEG_HDR];
    jf_seg_name(name, first_lsn);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    jf_seg_hdr_t h = { .version = JF_VERSION, .first_lsn = first_lsn, .prev_crc = prev_crc, .restart_crc = prev_crc };
    jf_seg_header(hdr, &h);
    int fd = fio_open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);   /* deposits are nobody else's */
    if (fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
        return -1;
    }
    ssize_t n = fio_write(fd, hdr, sizeof hdr);
    const char *step = n < 0 ? "write" : n != (ssize_t) sizeof hdr ? "short write" : NULL;
    if (!step && fio_fdatasync(fd) != 0)
        step = "fdatasync";
    if (!step && fio_rename(tmp, path) != 0)
        step = "rename";
    if (!step && fio_fsync_dir(dir) != 0)
        step = "fsync of the directory";
    if (step) {
        snprintf(err, errlen, "cannot create segment %s (%s): %s", name, step,
                 strcmp(step, "short write") == 0 ? "disk full?" : strerror(errno));
        fio_close(fd);
        unlink(tmp);
        return -1;
    }
    return fd;
}

/* Formats a note and hands it to the caller's report hook, if any. */
static void s_note(journal_report_fn *report, void *arg, journal_note_t severity, const char *event,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void s_note(journal_report_fn *report, void *arg, journal_note_t severity, const char *event,
                   const char *fmt, ...)
{
    if (!report)
        return;
    char detail[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    report(arg, severity, event, detail);
}

/* Marks the journal failed (mu held) and wakes everyone. */
static void s_fail_locked(journal_t *self, const char *reason)
{
    if (!atomic_load(&self->failed)) {
        snprintf(self->fail_reason, sizeof self->fail_reason, "%s", reason);
        s_note(self->opts.report, self->opts.report_arg, JOURNAL_NOTE_ERROR, "journal.failed",
               "dir=%s reason=\"%s\"", self->dir, reason);
    }
    atomic_store(&self->failed, 1);
    atomic_fetch_add(&self->commit_seq, 1);
    s_futex_wake_all(&self->commit_seq);
    for (int i = 0; i < 2; i++) {
        atomic_fetch_add(&self->batch_seq[i], 1);
        s_futex_wake_all(&self->batch_seq[i]);
    }
    pthread_cond_broadcast(&self->space_cv);
}

/* Pre-sizing: when a batch ending at batch_end would leave less than JOURNAL_ZERO_AHEAD -
 * JOURNAL_ZERO_STEP of zeros after it, writes zeros from there to batch_end + JOURNAL_ZERO_AHEAD (never past
 * segment_bytes), so that the fdatasyncs of the next batches find the file's size and blocks on disk
 * already (on ext4 a file that grows costs every fdatasync a journal commit for its size). The zeros
 * become durable with the batch's own fdatasync. 0, or -1 with a reason. */
static int s_zero_ahead(journal_t *self, uint64_t batch_end, char *err, size_t errlen)
{
    static const uint8_t zeros[64 * 1024];
    uint64_t limit = self->opts.segment_bytes;
    if (batch_end + JOURNAL_ZERO_AHEAD - JOURNAL_ZERO_STEP <= self->zeroed_end || batch_end >= limit)
        return 0;
    uint64_t from = self->zeroed_end > batch_end ? self->zeroed_end : batch_end;
    uint64_t to = batch_end + JOURNAL_ZERO_AHEAD < limit ? batch_end + JOURNAL_ZERO_AHEAD : limit;
    for (uint64_t off = from; off < to;) {
        size_t chunk = to - off < sizeof zeros ? (size_t) (to - off) : sizeof zeros;
        ssize_t n = fio_pwrite(self->seg_fd, zeros, chunk, (off_t) off);
        if (n != (ssize_t) chunk) {
            snprintf(err, errlen, "writing the segment's zeros ahead failed: %s",
                     n < 0 ? strerror(errno) : "short write (disk full?)");
            return -1;
        }
        off += chunk;
    }
    self->zeroed_end = to;
    return 0;
}

/* Writes one batch (rotating first if the segment is full) and makes it durable. 0, or -1 with a reason. */
static int s_write_batch(journal_t *self, const uint8_t *buf, size_t len, uint64_t first_lsn, uint32_t batch_last_crc,
                         char *err, size_t errlen)
{
    if (self->seg_size >= self->opts.segment_bytes && self->seg_size > JF_SEG_HDR) {
        int fd = s_create_segment(self->dir, first_lsn, self->written_crc, err, errlen);
        if (fd < 0)
            return -1;
        fio_close(self->seg_fd);
        self->seg_fd = fd;
        self->seg_size = self->zeroed_end = JF_SEG_HDR;
    }
    if (s_zero_ahead(self, self->seg_size + len, err, errlen) != 0)
        return -1;
    ssize_t n = fio_pwrite(self->seg_fd, buf, len, (off_t) self->seg_size);
    if (n < 0) {
        snprintf(err, errlen, "write of %zu bytes failed: %s", len, strerror(errno));
        return -1;
    }
    if ((size_t) n != len) {
        snprintf(err, errlen, "short write: %zd of %zu bytes", n, len);
        return -1;
    }
    self->seg_size += len;
    if (self->zeroed_end < self->seg_size)
        self->zeroed_end = self->seg_size;
    int64_t t0_us = probe_now_us();
    if (fio_fdatasync(self->seg_fd) != 0) {
        snprintf(err, errlen, "fdatasync failed: %s", strerror(errno));
        return -1;
    }
    probe_hist_observe(&self->fsync_us, probe_now_us() - t0_us);
    self->written_crc = batch_last_crc;
    self->wrote = 1;
    return 0;
}

/* Calls (outside notify_mu) every journal_when_durable registration with an LSN up to upto (all of
 * them when rc is -1: the journal failed) with rc, and forgets it. Only the flusher and
 * journal_destroy call this, so the registrations it takes out are called once. The flusher takes
 * notify_mu after every commit (one uncontended lock per batch): a registration either sees the new
 * durable LSN under it or is seen by it. */
static void s_notify_durable(journal_t *self, uint64_t upto, int rc)
{
    enum { S_BATCH = 64 };
    for (;;) {
        s_notice_t due[S_BATCH];
        size_t n = 0, kept = 0;
        pthread_mutex_lock(&self->notify_mu);
        for (size_t i = 0; i < self->notice_count; i++) {
            if (n < S_BATCH && (rc != 0 || self->notices[i].lsn <= upto))
                due[n++] = self->notices[i];
            else
                self->notices[kept++] = self->notices[i];
        }
        int more = n == S_BATCH && kept > 0;
        self->notice_count = kept;
        pthread_mutex_unlock(&self->notify_mu);
        for (size_t i = 0; i < n; i++)
            due[i].fn(due[i].arg, rc);
        if (!more)
            return;
    }
}

static void s_call_commits(journal_commit_fn *cb, void *arg, const uint8_t *buf, size_t len)
{
    size_t off = 0;
    while (off + JF_REC_HDR <= len) {
        uint32_t n = jf_get32(buf + off);
        cb(arg, jf_get64(buf + off + 8), buf + off + JF_REC_HDR, n);
        off += JF_REC_HDR + n;
    }
}

/* Under mu, records waiting: while someone holds (journal_hold), waits for a release (any holder's)
 * or JOURNAL_HOLD_MAX_US, so what the holders are about to submit goes in this batch. */
static void s_hold_wait_locked(journal_t *self)
{
    if (atomic_load(&self->holds) == 0)
        return;
    uint32_t seen = atomic_load(&self->release_seq);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);   /* work_cv's clock */
    until.tv_nsec += JOURNAL_HOLD_MAX_US * 1000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    atomic_store(&self->flusher_held, 1);
    while (atomic_load(&self->holds) > 0 && atomic_load(&self->release_seq) == seen && !self->closing &&
           !atomic_load(&self->failed) && self->fill_len < self->cap / 2)
        if (pthread_cond_timedwait(&self->work_cv, &self->mu, &until) != 0)
            break;
    atomic_store(&self->flusher_held, 0);
}

void journal_hold(journal_t *self)
{
    if (self)
        atomic_fetch_add(&self->holds, 1);
}

void journal_release(journal_t *self)
{
    if (!self)
        return;
    atomic_fetch_sub(&self->holds, 1);
    atomic_fetch_add(&self->release_seq, 1);
    /* the flusher sets flusher_held under mu before it looks at release_seq: if it is not set yet,
     * the flusher will see the new release_seq; if it is, it is waiting (or about to, under mu) */
    if (atomic_load(&self->flusher_held)) {
        pthread_mutex_lock(&self->mu);
        pthread_cond_signal(&self->work_cv);
        pthread_mutex_unlock(&self->mu);
    }
}

static void *s_flusher(void *arg)
{
    journal_t *self = arg;
    pthread_mutex_lock(&self->mu);
    for (;;) {
        while (self->fill_len == 0 && !self->closing && !atomic_load(&self->failed)) {
            self->flusher_idle = 1;
            pthread_cond_wait(&self->work_cv, &self->mu);
            self->flusher_idle = 0;
        }
        if (atomic_load(&self->failed) || self->fill_len == 0)
            break;      /* failed, or closing with nothing left */
        s_hold_wait_locked(self);
        uint8_t *batch = self->fill;
        size_t len = self->fill_len;
        uint64_t last = self->next_lsn - 1;
        uint64_t first = jf_get64(batch + 8);
        uint32_t last_crc = self->last_crc;
        journal_commit_fn *cb = self->cb;
        void *cb_arg = self->cb_arg;
        uint64_t batch_no = self->fill_batch++;
        self->fill = self->spare;
        self->fill_len = 0;
        self->fill_count = 0;
        self->spare = NULL;
        if (self->space_waiters)
            pthread_cond_broadcast(&self->space_cv);
        pthread_mutex_unlock(&self->mu);

        char err[200];
        int rc = s_write_batch(self, batch, len, first, last_crc, err, sizeof err);
        if (rc == 0) {
            probe_hist_observe(&self->batch_records, (int64_t) (last - first + 1));
            /* publish before taking the lock: the woken appenders need the mutex to queue again */
            atomic_store(&self->durable_lsn, last);
            atomic_fetch_add(&self->batch_seq[batch_no & 1], 1);
            s_futex_wake_all(&self->batch_seq[batch_no & 1]);
            atomic_fetch_add(&self->commit_seq, 1);
            if (atomic_load(&self->generic_waiters))
                s_futex_wake_all(&self->commit_seq);
            s_notify_durable(self, last, 0);
            /* the commit callbacks (the monitor feed, live updates: each decodes every record) run
             * after the wake, while the woken appenders answer and the next batch fills */
            if (cb)
                s_call_commits(cb, cb_arg, batch, len);
        }
        pthread_mutex_lock(&self->mu);
        self->spare = batch;
        if (rc != 0) {
            s_fail_locked(self, err);
            break;
        }
    }
    int failed = atomic_load(&self->failed);
    pthread_mutex_unlock(&self->mu);
    if (failed)
        s_notify_durable(self, 0, -1);   /* nothing queued will be durable now */
    return NULL;
}

/* Cuts a torn tail found by the scan: truncate the last segment to its last whole record. */
static int s_cut_tail(const char *dir, const journal_opts_t *opts, const jf_scan_t *scan, char *err, size_t errlen)
{
    const jf_seg_t *seg = &scan->segs[scan->bad_seg];
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, seg->name);
    int fd = fio_open(path, O_WRONLY, 0);
    if (fd < 0 || fio_ftruncate(fd, (off_t) scan->bad_offset) != 0 || fio_fsync(fd) != 0) {
        snprintf(err, errlen, "journal %s: cannot cut the torn tail of %s: %s", dir, seg->name, strerror(errno));
        if (fd >= 0)
            fio_close(fd);
        return -1;
    }
    fio_close(fd);
    s_note(opts->report, opts->report_arg, JOURNAL_NOTE_WARN, "journal.tail_cut",
           "dir=%s segment=%s offset=%" PRIu64 " bytes=%" PRIu64 " reason=\"%s\"", dir, seg->name, scan->bad_offset,
           scan->bad_bytes, scan->reason);
    return 0;
}

/* Removes *.seg.tmp leftovers of a segment creation that a crash interrupted (never renamed, so
 * never part of the journal). */
static void s_remove_tmp(const char *dir, const journal_opts_t *opts)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    int removed = 0;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n == 28 && strcmp(e->d_name + 20, ".seg.tmp") == 0) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%.28s", dir, e->d_name);
            if (fio_unlink(path) == 0)
                removed++;
        }
    }
    closedir(d);
    if (removed)
        s_note(opts->report, opts->report_arg, JOURNAL_NOTE_INFO, "journal.tmp_removed", "dir=%s files=%d", dir,
               removed);
}

/* Segments written by an older kasa (0644): only the owner may read deposits. Each one tightened to
 * 0600 is reported; one that cannot be changed is left as it is (reading it still works). */
static void s_tighten_segments(const char *dir, const journal_opts_t *opts, const jf_scan_t *scan)
{
    for (size_t i = 0; i < scan->nsegs; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, scan->segs[i].name);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077) && chmod(path, 0600) == 0)
            s_note(opts->report, opts->report_arg, JOURNAL_NOTE_INFO, "journal.mode_tightened",
                   "file=%s from=%04o to=0600", path, (unsigned) (st.st_mode & 07777));
    }
}

journal_t *journal_open(const char *dir, const journal_opts_t *opts, char *err, size_t errlen)
{
    if (mkdir(dir, 0700) == 0) {
        /* make the new directory's entry durable in its parent */
        char parent[4096];
        snprintf(parent, sizeof parent, "%s", dir);
        char *slash = strrchr(parent, '/');
        if (slash == parent)
            slash[1] = '\0';
        else if (slash)
            *slash = '\0';
        else
            snprintf(parent, sizeof parent, ".");
        if (fio_fsync_dir(parent) != 0) {
            snprintf(err, errlen, "journal %s: cannot sync the parent directory: %s", dir, strerror(errno));
            return NULL;
        }
    } else if (errno != EEXIST) {
        snprintf(err, errlen, "journal %s: cannot create the directory: %s", dir, strerror(errno));
        return NULL;
    } else {
        /* a directory made by an older kasa (0755): only its owner may look inside */
        struct stat st;
        if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 077) && chmod(dir, 0700) == 0)
            s_note(opts ? opts->report : NULL, opts ? opts->report_arg : NULL, JOURNAL_NOTE_INFO,
                   "journal.mode_tightened", "dir=%s from=%04o to=0700", dir, (unsigned) (st.st_mode & 07777));
    }
    journal_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->dir = strdup(dir);
    self->seg_fd = -1;
    probe_hist_init(&self->fsync_us, probe_latency_us_bounds, probe_latency_us_count);
    probe_hist_init(&self->batch_records, probe_size_bounds, probe_size_count);
    self->opts.segment_bytes = opts && opts->segment_bytes ? opts->segment_bytes : JOURNAL_DEFAULT_SEGMENT;
    self->opts.max_batch_bytes = opts && opts->max_batch_bytes ? opts->max_batch_bytes : JOURNAL_DEFAULT_BATCH;
    self->opts.report = opts ? opts->report : NULL;
    self->opts.report_arg = opts ? opts->report_arg : NULL;
    self->cap = self->opts.max_batch_bytes;
    if (self->cap < JF_REC_HDR + JOURNAL_MAX_PAYLOAD)
        self->cap = JF_REC_HDR + JOURNAL_MAX_PAYLOAD;
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP); /* short critical sections: spin a little */
    pthread_mutex_init(&self->mu, &ma);
    pthread_mutexattr_destroy(&ma);
    pthread_cond_init(&self->work_cv, NULL);
    pthread_cond_init(&self->space_cv, NULL);
    pthread_mutex_init(&self->notify_mu, NULL);
    self->lock_fd = jf_lock(dir, err, errlen);
    if (self->lock_fd < 0)
        goto fail;
    s_remove_tmp(dir, &self->opts);

    jf_scan_t scan;
    if (jf_scan(dir, &scan, NULL, NULL, err, errlen) != 0)
        goto fail;
    if (scan.state == JF_CORRUPT) {
        snprintf(err, errlen, "journal %s: bad record in segment %s at offset %" PRIu64 " (%s); "
                 "run `kasa journal repair %s`", dir, scan.segs[scan.bad_seg].name, scan.bad_offset,
                 scan.reason, dir);
        jf_scan_free(&scan);
        goto fail;
    }
    s_tighten_segments(dir, &self->opts, &scan);
    if (scan.state == JF_TORN && s_cut_tail(dir, &self->opts, &scan, err, errlen) != 0) {
        jf_scan_free(&scan);
        goto fail;
    }
    self->next_lsn = scan.next_lsn;
    self->last_crc = self->written_crc = scan.last_crc;
    atomic_store(&self->durable_lsn, scan.next_lsn - 1);
    atomic_store(&self->queued_lsn, scan.next_lsn - 1);
    const jf_seg_t *tail = scan.nsegs ? &scan.segs[scan.nsegs - 1] : NULL;
    if (!tail || tail->version < JF_VERSION) {
        /* a new journal, or one written by an older kasa: new records go to a segment of this format
         * (an older segment's records carry no batch indices; it is read, never appended to) */
        self->seg_fd = s_create_segment(dir, scan.next_lsn, scan.last_crc, err, errlen);
        self->seg_size = self->zeroed_end = JF_SEG_HDR;
    } else {
        const jf_seg_t *last = &scan.segs[scan.nsegs - 1];
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, last->name);
        /* the next batch goes after the last record, on top of any zeros a crash left (pre-sizing) */
        self->seg_fd = fio_open(path, O_WRONLY, 0);
        self->seg_size = scan.state == JF_TORN ? scan.bad_offset : last->used;
        self->zeroed_end = scan.state == JF_TORN ? scan.bad_offset : last->size;
        if (self->seg_fd < 0)
            snprintf(err, errlen, "journal %s: cannot open %s: %s", dir, last->name, strerror(errno));
    }
    jf_scan_free(&scan);
    if (self->seg_fd < 0)
        goto fail;

    self->fill = malloc(self->cap);
    self->spare = malloc(self->cap);
    if (!self->fill || !self->spare) {
        snprintf(err, errlen, "out of memory for the batch buffers");
        goto fail;
    }
    if (pthread_create(&self->flusher, NULL, s_flusher, self) != 0) {
        snprintf(err, errlen, "cannot start the journal's flusher thread");
        goto fail;
    }
    self->flusher_started = 1;
    return self;
fail:
    journal_destroy(&self);
    return NULL;
}

/* A clean close proves its last group commit: only the last group commit of a journal can be torn,
 * and damage inside it cannot be told from a torn write unless something was written after it. So a
 * clean close that wrote anything starts the next segment (empty, chained to the last record; the
 * writer appends to it next time): every record before it is then provably acknowledged, and damage
 * to any of them refuses the start instead of being cut as a torn tail. A failure here only loses
 * that proof (noted), never a record. */
static void s_close_mark(journal_t *self)
{
    char err[300];
    int fd = s_create_segment(self->dir, self->next_lsn, self->written_crc, err, sizeof err);
    if (fd >= 0)
        fio_close(fd);
    else
        s_note(self->opts.report, self->opts.report_arg, JOURNAL_NOTE_WARN, "journal.close_mark_failed",
               "dir=%s reason=\"%s\"", self->dir, err);
}

void journal_destroy(journal_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    journal_t *self = *self_p;
    *self_p = NULL;
    if (self->flusher_started) {
        pthread_mutex_lock(&self->mu);
        self->closing = 1;
        pthread_cond_signal(&self->work_cv);
        pthread_cond_broadcast(&self->space_cv);
        pthread_mutex_unlock(&self->mu);
        pthread_join(self->flusher, NULL);
        /* anything still queued after a failure is never durable: release its waiters */
        pthread_mutex_lock(&self->mu);
        if (atomic_load(&self->durable_lsn) < self->next_lsn - 1)
            s_fail_locked(self, "journal closed after a failure");
        pthread_mutex_unlock(&self->mu);
        if (!atomic_load(&self->failed) && self->wrote)
            s_close_mark(self);
    }
    if (self->seg_fd >= 0)
        fio_close(self->seg_fd);
    if (self->lock_fd >= 0)
        fio_close(self->lock_fd);   /* closing releases the flock */
    pthread_mutex_destroy(&self->mu);
    pthread_cond_destroy(&self->work_cv);
    pthread_cond_destroy(&self->space_cv);
    s_notify_durable(self, 0, -1);   /* only after a failure can one still wait here */
    pthread_mutex_destroy(&self->notify_mu);
    free(self->notices);
    free(self->fill);
    free(self->spare);
    free(self->dir);
    free(self);
}

/* This thread's last submitted record, for journal_wait. */
static _Thread_local struct {
    journal_t *journal;
    uint64_t lsn, batch_no;
} s_last;

/* Queues one record; returns its LSN (0 on failure) and the number of the batch it is in. */
static uint64_t s_submit(journal_t *self, const void *payload, size_t len, uint64_t *batch_no)
{
    if (!self || len > JOURNAL_MAX_PAYLOAD || (len && !payload))
        return 0;
    uint32_t pcrc = jf_crc32c(0, payload, len);
    size_t need = JF_REC_HDR + len;
    pthread_mutex_lock(&self->mu);
    while (!atomic_load(&self->failed) && !self->closing && self->fill_len + need > self->cap) {
        self->space_waiters++;
        pthread_cond_wait(&self->space_cv, &self->mu);
        self->space_waiters--;
    }
    if (atomic_load(&self->failed) || self->closing) {
        pthread_mutex_unlock(&self->mu);
        return 0;
    }
    uint64_t lsn = self->next_lsn++;
    *batch_no = self->fill_batch;
    uint8_t *rec = self->fill + self->fill_len;
    self->last_crc = jf_rec_header(rec, lsn, self->last_crc, pcrc, (uint32_t) len, self->fill_count++);
    if (len)
        memcpy(rec + JF_REC_HDR, payload, len);
    self->fill_len += need;
    atomic_store(&self->queued_lsn, lsn);
    if (self->flusher_idle)
        pthread_cond_signal(&self->work_cv);
    pthread_mutex_unlock(&self->mu);
    s_last.journal = self;
    s_last.lsn = lsn;
    s_last.batch_no = *batch_no;
    return lsn;
}

/* Sleeps on the futex word of batch batch_no (the one holding lsn) until lsn is durable: 0, or -1
 * if the journal failed. The word is shared with every other batch of the same parity: each wake
 * re-checks. */
static int s_wait_batch(journal_t *self, uint64_t lsn, uint64_t batch_no)
{
    _Atomic uint32_t *word = &self->batch_seq[batch_no & 1];
    for (;;) {
        uint32_t seen = atomic_load(word);
        if (atomic_load(&self->durable_lsn) >= lsn)
            return 0;
        if (atomic_load(&self->failed))
            return -1;
        s_futex_wait(word, seen);
    }
}

uint64_t journal_submit(journal_t *self, const void *payload, size_t len)
{
    uint64_t batch_no;
    return s_submit(self, payload, len, &batch_no);
}

int journal_wait(journal_t *self, uint64_t lsn)
{
    if (!self || lsn == 0 || lsn > atomic_load(&self->queued_lsn))
        return -1;
    if (s_last.journal == self && s_last.lsn == lsn)
        return s_wait_batch(self, lsn, s_last.batch_no);   /* woken by its own batch's commit only */
    for (;;) {
        uint32_t seen = atomic_load(&self->commit_seq);
        if (atomic_load(&self->durable_lsn) >= lsn)
            return 0;
        if (atomic_load(&self->failed))
            return -1;
        atomic_fetch_add(&self->generic_waiters, 1);
        s_futex_wait(&self->commit_seq, seen);
        atomic_fetch_sub(&self->generic_waiters, 1);
    }
}

void journal_when_durable(journal_t *self, uint64_t lsn, journal_durable_fn *fn, void *arg)
{
    if (!self || lsn == 0 || lsn > atomic_load(&self->queued_lsn)) {
        fn(arg, -1);
        return;
    }
    int rc = 1;   /* 1: registered, to be called by the flusher */
    pthread_mutex_lock(&self->notify_mu);
    /* the flusher publishes durable_lsn (or failed) before it takes notify_mu to look here */
    if (atomic_load(&self->durable_lsn) >= lsn)
        rc = 0;
    else if (atomic_load(&self->failed))
        rc = -1;
    else if (self->notice_count == self->notice_cap) {
        size_t cap = self->notice_cap ? self->notice_cap * 2 : 64;
        s_notice_t *grown = realloc(self->notices, cap * sizeof *grown);
        if (grown) {
            self->notices = grown;
            self->notice_cap = cap;
        }
    }
    int kept = 0;
    if (rc == 1 && self->notice_count < self->notice_cap) {
        self->notices[self->notice_count++] = (s_notice_t) { .lsn = lsn, .fn = fn, .arg = arg };
        kept = 1;
    }
    pthread_mutex_unlock(&self->notify_mu);
    if (kept)
        return;
    if (rc == 1)   /* no memory to remember it: wait here instead */
        rc = journal_wait(self, lsn);
    fn(arg, rc);
}

/* journal_append waits on the futex word of its own batch, so a commit wakes only the appenders
 * it made durable, not those already queued in the next batch. */
uint64_t journal_append(journal_t *self, const void *payload, size_t len)
{
    uint64_t batch_no;
    uint64_t lsn = s_submit(self, payload, len, &batch_no);
    if (lsn == 0)
        return 0;
    return s_wait_batch(self, lsn, batch_no) == 0 ? lsn : 0;
}

uint64_t journal_durable_lsn(journal_t *self)
{
    return self ? atomic_load(&self->durable_lsn) : 0;
}

void journal_on_commit(journal_t *self, journal_commit_fn *fn, void *arg)
{
    if (!self)
        return;
    pthread_mutex_lock(&self->mu);
    self->cb = fn;
    self->cb_arg = arg;
    pthread_mutex_unlock(&self->mu);
}

const probe_hist_t *journal_fsync_us(const journal_t *self)
{
    return &self->fsync_us;
}

const probe_hist_t *journal_batch_records(const journal_t *self)
{
    return &self->batch_records;
}

int journal_failed(journal_t *self)
{
    return atomic_load(&self->failed) != 0;
}
