/* fio.h — every file operation the journal performs, in one thin layer that tests can break.
 *
 * Each function is the plain POSIX call (same arguments, same return, errno set on failure), counted
 * per kind of operation. A test arms a fault with fio_fail_at(op, n, err): the n-th call of that kind
 * from now on fails with errno = err and does nothing. fio_short_write_at(n, keep) makes the n-th write
 * store only its first keep bytes and return keep. fio_reset() disarms everything and zeroes the
 * counters. Counters and faults are atomics: any number of threads may call in at once. */
#ifndef KASA_JOURNAL_FIO_H
#define KASA_JOURNAL_FIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef enum {
    FIO_OPEN,     /* fio_open                                     */
    FIO_WRITE,    /* fio_write, fio_pwrite                        */
    FIO_FSYNC,    /* fio_fdatasync, fio_fsync, fio_fsync_dir      */
    FIO_RENAME,   /* fio_rename                                   */
    FIO_TRUNCATE, /* fio_ftruncate                                */
    FIO_CLOSE,    /* fio_close                                    */
    FIO_UNLINK,   /* fio_unlink                                   */
    FIO_OP_COUNT
} fio_op_t;

/* Arms a fault: the n-th call (n >= 1, counted from this call) of kind op fails with errno = err,
 * once. n = 0 disarms that kind. */
void fio_fail_at(fio_op_t op, uint64_t n, int err);

/* Arms a short write: the n-th write from now writes only min(keep, len) bytes and returns that count. */
void fio_short_write_at(uint64_t n, size_t keep);

/* Disarms every fault and zeroes every counter. */
void fio_reset(void);

/* How many calls of kind op were made since the last fio_reset (faulted ones included). */
uint64_t fio_count(fio_op_t op);

/* How many faults (failures and short writes) have fired since the last fio_reset. */
uint64_t fio_faults_fired(void);

/* Tests: calls fn(arg, path) at the start of every fio_open, before the file is opened (NULL: none),
 * to act between a reader's listing and its opening (a segment retired meanwhile). Not thread-safe:
 * set while no other thread opens files. */
void fio_on_open(void (*fn)(void *arg, const char *path), void *arg);

int fio_open(const char *path, int flags, mode_t mode);
ssize_t fio_write(int fd, const void *buf, size_t len);
ssize_t fio_pwrite(int fd, const void *buf, size_t len, off_t off);
int fio_fdatasync(int fd);
int fio_fsync(int fd);
/* Opens dir, fsyncs it (so a created, renamed or removed entry is durable), closes it. 0 or -1. */
int fio_fsync_dir(const char *dir);
int fio_rename(const char *from, const char *to);
int fio_ftruncate(int fd, off_t len);
int fio_close(int fd);
int fio_unlink(const char *path);
/* Writes the len bytes of fd at off to the disk and waits for them, FIO_WRITEBACK_STEP bytes at a
 * time (sync_file_range: the data only, not the file's size or the directory). Pacing for files
 * written off the request path (snapshots, the index of finished deposits): their bytes reach the
 * disk in small steps while they are written, not all at their fsync. On a virtual disk every cache
 * flush (each journal fdatasync) carries what was written since the last one, so a journal fdatasync
 * that follows a megabyte of snapshot pays for that megabyte: measured here (an append+fdatasync loop
 * beside a 2.5 MB file written and fsynced), the loop's p99 during the writes was 2.2-4.2 ms with the
 * whole file or 1 MB steps, 1.3-2.0 ms with 64 KiB steps, at the same throughput. Neither counted
 * nor faulted, and its failure is ignored: the fsync that follows is what makes the file durable,
 * and what a test breaks. */
#define FIO_WRITEBACK_STEP ((off_t) 64 << 10)
void fio_writeback(int fd, off_t off, off_t len);

#endif
