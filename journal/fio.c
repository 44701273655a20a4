/* fio.c — the journal's file operations, counted and breakable on purpose (see fio.h). */
#include "journal/fio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

static atomic_uint_fast64_t s_count[FIO_OP_COUNT];
static atomic_uint_fast64_t s_fail_at[FIO_OP_COUNT];  /* absolute call number that fails; 0 = none */
static atomic_int s_fail_errno[FIO_OP_COUNT];
static atomic_uint_fast64_t s_short_at;                /* absolute write number that is short      */
static atomic_size_t s_short_keep;
static atomic_uint_fast64_t s_fired;

void fio_fail_at(fio_op_t op, uint64_t n, int err)
{
    if (op < 0 || op >= FIO_OP_COUNT)
        return;
    atomic_store(&s_fail_errno[op], err ? err : EIO);
    atomic_store(&s_fail_at[op], n ? atomic_load(&s_count[op]) + n : 0);
}

void fio_short_write_at(uint64_t n, size_t keep)
{
    atomic_store(&s_short_keep, keep);
    atomic_store(&s_short_at, n ? atomic_load(&s_count[FIO_WRITE]) + n : 0);
}

void fio_reset(void)
{
    for (int i = 0; i < FIO_OP_COUNT; i++) {
        atomic_store(&s_fail_at[i], 0);
        atomic_store(&s_count[i], 0);
    }
    atomic_store(&s_short_at, 0);
    atomic_store(&s_fired, 0);
}

uint64_t fio_count(fio_op_t op)
{
    return (op < 0 || op >= FIO_OP_COUNT) ? 0 : atomic_load(&s_count[op]);
}

uint64_t fio_faults_fired(void)
{
    return atomic_load(&s_fired);
}

/* Counts one call of kind op; returns 1 (errno set) if this call is the one armed to fail. */
static int s_faulted(fio_op_t op)
{
    uint64_t n = atomic_fetch_add(&s_count[op], 1) + 1;
    uint64_t at = atomic_load(&s_fail_at[op]);
    if (at != 0 && n == at && atomic_compare_exchange_strong(&s_fail_at[op], &at, 0)) {
        atomic_fetch_add(&s_fired, 1);
        errno = atomic_load(&s_fail_errno[op]);
        return 1;
    }
    return 0;
}

/* For a write: the length actually to write (len, or less if this is the armed short write). */
static size_t s_write_len(size_t len)
{
    uint64_t n = atomic_load(&s_count[FIO_WRITE]);
    uint64_t at = atomic_load(&s_short_at);
    if (at != 0 && n == at && atomic_compare_exchange_strong(&s_short_at, &at, 0)) {
        atomic_fetch_add(&s_fired, 1);
        size_t keep = atomic_load(&s_short_keep);
        return keep < len ? keep : len;
    }
    return len;
}

static void (*s_on_open)(void *arg, const char *path);
static void *s_on_open_arg;

void fio_on_open(void (*fn)(void *arg, const char *path), void *arg)
{
    s_on_open = fn;
    s_on_open_arg = arg;
}

int fio_open(const char *path, int flags, mode_t mode)
{
    if (s_on_open)
        s_on_open(s_on_open_arg, path);
    if (s_faulted(FIO_OPEN))
        return -1;
    return open(path, flags | O_CLOEXEC, mode);
}

ssize_t fio_write(int fd, const void *buf, size_t len)
{
    if (s_faulted(FIO_WRITE))
        return -1;
    return write(fd, buf, s_write_len(len));
}

ssize_t fio_pwrite(int fd, const void *buf, size_t len, off_t off)
{
    if (s_faulted(FIO_WRITE))
        return -1;
    return pwrite(fd, buf, s_write_len(len), off);
}

int fio_fdatasync(int fd)
{
    if (s_faulted(FIO_FSYNC))
        return -1;
    return fdatasync(fd);
}

int fio_fsync(int fd)
{
    if (s_faulted(FIO_FSYNC))
        return -1;
    return fsync(fd);
}

int fio_fsync_dir(const char *dir)
{
    if (s_faulted(FIO_FSYNC))
        return -1;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

int fio_rename(const char *from, const char *to)
{
    if (s_faulted(FIO_RENAME))
        return -1;
    return rename(from, to);
}

int fio_ftruncate(int fd, off_t len)
{
    if (s_faulted(FIO_TRUNCATE))
        return -1;
    return ftruncate(fd, len);
}

int fio_close(int fd)
{
    if (s_faulted(FIO_CLOSE)) {
        int err = errno;
        close(fd);             /* a failed close still releases the descriptor, as close(2) does */
        errno = err;
        return -1;
    }
    return close(fd);
}

int fio_unlink(const char *path)
{
    if (s_faulted(FIO_UNLINK))
        return -1;
    return unlink(path);
}

void fio_writeback(int fd, off_t off, off_t len)
{
    for (off_t end = off + len; off < end; off += FIO_WRITEBACK_STEP) {
        off_t n = end - off < FIO_WRITEBACK_STEP ? end - off : FIO_WRITEBACK_STEP;
        if (sync_file_range(fd, off, n, SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                        SYNC_FILE_RANGE_WAIT_AFTER) != 0)
            return;
    }
}
