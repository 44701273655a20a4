/* test_fio.c — the journal's breakable file layer: faults fire exactly where armed, once. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal/fio.h"
#include "tests/check.h"

static char s_path[4096];

static const char *s_tmp(const char *name)
{
    const char *base = getenv("KASA_TEST_OUT");
    if (!base || !*base)
        base = "build/test-out";
    mkdir(base, 0755);
    snprintf(s_path, sizeof s_path, "%s/fio-%s-%d", base, name, (int) getpid());
    unlink(s_path);
    return s_path;
}

static void test_calls_pass_through_and_are_counted(void)
{
    fio_reset();
    const char *p = s_tmp("plain");
    int fd = fio_open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    CHECK_EQ_INT(fio_write(fd, "hello", 5), 5);
    CHECK_EQ_INT(fio_pwrite(fd, "J", 1, 0), 1);
    CHECK_EQ_INT(fio_fdatasync(fd), 0);
    CHECK_EQ_INT(fio_fsync(fd), 0);
    CHECK_EQ_INT(fio_ftruncate(fd, 3), 0);
    char buf[8] = "";
    CHECK_EQ_INT(pread(fd, buf, sizeof buf, 0), 3);
    CHECK(memcmp(buf, "Jel", 3) == 0);
    CHECK_EQ_INT(fio_close(fd), 0);
    char to[4200];
    snprintf(to, sizeof to, "%s.renamed", p);
    CHECK_EQ_INT(fio_rename(p, to), 0);
    CHECK_EQ_INT(fio_fsync_dir("."), 0);
    CHECK_EQ_INT(fio_unlink(to), 0);
    CHECK_EQ_INT(fio_count(FIO_OPEN), 1);
    CHECK_EQ_INT(fio_count(FIO_WRITE), 2);
    CHECK_EQ_INT(fio_count(FIO_FSYNC), 3);
    CHECK_EQ_INT(fio_count(FIO_TRUNCATE), 1);
    CHECK_EQ_INT(fio_count(FIO_RENAME), 1);
    CHECK_EQ_INT(fio_count(FIO_CLOSE), 1);
    CHECK_EQ_INT(fio_count(FIO_UNLINK), 1);
    CHECK_EQ_INT(fio_faults_fired(), 0);
}

static void test_nth_call_fails_once_with_the_given_errno(void)
{
    fio_reset();
    const char *p = s_tmp("fail");
    int fd = fio_open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
    fio_fail_at(FIO_WRITE, 3, ENOSPC);
    CHECK_EQ_INT(fio_write(fd, "a", 1), 1);
    CHECK_EQ_INT(fio_write(fd, "b", 1), 1);
    errno = 0;
    CHECK_EQ_INT(fio_write(fd, "c", 1), -1);
    CHECK_EQ_INT(errno, ENOSPC);
    CHECK_EQ_INT(fio_write(fd, "d", 1), 1);          /* once only */
    struct stat st;
    fstat(fd, &st);
    CHECK_EQ_INT(st.st_size, 3);                     /* the failed write wrote nothing */
    fio_fail_at(FIO_FSYNC, 1, EIO);
    CHECK_EQ_INT(fio_fdatasync(fd), -1);
    CHECK_EQ_INT(errno, EIO);
    CHECK_EQ_INT(fio_fdatasync(fd), 0);
    fio_fail_at(FIO_RENAME, 1, EXDEV);
    CHECK_EQ_INT(fio_rename(p, p), -1);
    CHECK_EQ_INT(errno, EXDEV);
    fio_fail_at(FIO_FSYNC, 2, EIO);
    fio_fail_at(FIO_FSYNC, 0, 0);                    /* disarmed */
    CHECK_EQ_INT(fio_fsync(fd), 0);
    CHECK_EQ_INT(fio_fsync(fd), 0);
    CHECK_EQ_INT(fio_faults_fired(), 3);
    fio_fail_at(FIO_CLOSE, 1, EIO);
    CHECK_EQ_INT(fio_close(fd), -1);
    CHECK(fcntl(fd, F_GETFD) == -1);                 /* the descriptor was released anyway */
    unlink(p);
    fio_reset();
    CHECK_EQ_INT(fio_faults_fired(), 0);
    CHECK_EQ_INT(fio_count(FIO_WRITE), 0);
}

static void test_short_write_stores_only_the_kept_bytes(void)
{
    fio_reset();
    const char *p = s_tmp("short");
    int fd = fio_open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
    fio_short_write_at(2, 4);
    CHECK_EQ_INT(fio_write(fd, "0123456789", 10), 10);
    CHECK_EQ_INT(fio_write(fd, "abcdefghij", 10), 4);
    CHECK_EQ_INT(fio_write(fd, "XY", 2), 2);
    char buf[32] = "";
    CHECK_EQ_INT(pread(fd, buf, sizeof buf, 0), 16);
    CHECK(memcmp(buf, "0123456789abcdXY", 16) == 0);
    CHECK_EQ_INT(fio_faults_fired(), 1);
    fio_close(fd);
    unlink(p);
    fio_reset();
}

typedef struct { int fd; int failures; } s_thr_t;

static void *s_writer(void *arg)
{
    s_thr_t *t = arg;
    for (int i = 0; i < 1000; i++)
        if (fio_write(t->fd, "z", 1) != 1)
            t->failures++;
    return NULL;
}

/* Counters are exact and an armed fault fires exactly once when 4 threads write at once. */
static void test_counters_and_faults_are_thread_safe(void)
{
    fio_reset();
    const char *p = s_tmp("threads");
    int fd = fio_open(p, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
    fio_fail_at(FIO_WRITE, 2500, EIO);
    s_thr_t t[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        t[i] = (s_thr_t) { fd, 0 };
        pthread_create(&th[i], NULL, s_writer, &t[i]);
    }
    int failures = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        failures += t[i].failures;
    }
    CHECK_EQ_INT(fio_count(FIO_WRITE), 4000);
    CHECK_EQ_INT(failures, 1);
    CHECK_EQ_INT(fio_faults_fired(), 1);
    struct stat st;
    fstat(fd, &st);
    CHECK_EQ_INT(st.st_size, 3999);
    fio_close(fd);
    unlink(p);
    fio_reset();
}

int main(void)
{
    RUN(test_calls_pass_through_and_are_counted);
    RUN(test_nth_call_fails_once_with_the_given_errno);
    RUN(test_short_write_stores_only_the_kept_bytes);
    RUN(test_counters_and_faults_are_thread_safe);
    return check_done();
}
