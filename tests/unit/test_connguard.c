/* test_connguard.c — the head deadline (a trickling client is cut although it keeps sending; a
 * client whose head arrived is not; the deadline restarts after an answer), the per-client limit
 * (IPv6 per /64, trusted proxies exempt), and fitting RLIMIT_NOFILE to the connection limit. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/check.h"
#include "web/connguard.h"

static void s_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

static struct sockaddr_in s_v4(const char *ip)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    inet_pton(AF_INET, ip, &sa.sin_addr);
    return sa;
}

/* 1 if the peer of fd (one end of a socketpair) sees the end: the other end was shut down. */
static int s_was_cut(int peer_fd)
{
    struct pollfd p = { .fd = peer_fd, .events = POLLIN };
    if (poll(&p, 1, 0) <= 0)
        return 0;
    char b;
    return recv(peer_fd, &b, 1, MSG_DONTWAIT) == 0;
}

static void test_a_trickling_head_is_cut_at_the_deadline(void)
{
    connguard_opts_t o = {.header_timeout_ms = 300, .max_per_client = 8};
    connguard_t *g = connguard_new(&o);
    int slow[2], quick[2];
    CHECK_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, slow), 0);
    CHECK_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, quick), 0);
    struct sockaddr_in a = s_v4("192.0.2.1");
    int refused;
    connguard_conn_t *cs = connguard_open(g, (struct sockaddr *) &a, slow[0], &refused);
    connguard_conn_t *cq = connguard_open(g, (struct sockaddr *) &a, quick[0], &refused);
    CHECK(cs != NULL && cq != NULL);
    connguard_head_done(g, cq);                      /* its head arrived at once */
    for (int i = 0; i < 5; i++) {                    /* the slow one "sends a header line" every 100 ms */
        s_sleep_ms(100);
        if (i < 1)
            CHECK(!s_was_cut(slow[1]));
    }
    CHECK(s_was_cut(slow[1]));                       /* cut although it kept trickling */
    CHECK(!s_was_cut(quick[1]));                     /* being answered: no deadline */
    CHECK_EQ_INT(connguard_cut_count(g), 1);
    connguard_idle(g, cq);                           /* answered; waits for the next head */
    s_sleep_ms(150);
    CHECK(!s_was_cut(quick[1]));
    s_sleep_ms(400);
    CHECK(s_was_cut(quick[1]));                      /* an idle keep-alive is cut after the deadline too */
    connguard_close(g, &cs);
    connguard_close(g, &cq);
    CHECK(cs == NULL);
    CHECK_EQ_INT(connguard_open_count(g), 0);
    connguard_destroy(&g);
    connguard_destroy(&g);
    close(slow[0]); close(slow[1]); close(quick[0]); close(quick[1]);
}

static void test_per_client_limit_counts_ipv6_per_64_and_exempts_proxies(void)
{
    connguard_opts_t o = {.header_timeout_ms = 60000, .max_per_client = 3};
    char err[128];
    CHECK_EQ_INT(netlist_parse("10.0.0.0/8", &o.trusted, err, sizeof err), 0);
    connguard_t *g = connguard_new(&o);
    connguard_conn_t *c[16];
    int n = 0, refused = 0;
    struct sockaddr_in a = s_v4("192.0.2.1"), b = s_v4("192.0.2.2"), proxy = s_v4("10.1.2.3");
    for (int i = 0; i < 3; i++) {
        c[n++] = connguard_open(g, (struct sockaddr *) &a, -1, &refused);
        CHECK(c[n - 1] != NULL && refused == 0);
    }
    CHECK(connguard_open(g, (struct sockaddr *) &a, -1, &refused) == NULL);
    CHECK_EQ_INT(refused, 1);
    c[n++] = connguard_open(g, (struct sockaddr *) &b, -1, &refused);   /* another client */
    CHECK(c[n - 1] != NULL);
    for (int i = 0; i < 5; i++) {                                     /* a trusted proxy: no limit */
        c[n++] = connguard_open(g, (struct sockaddr *) &proxy, -1, &refused);
        CHECK(c[n - 1] != NULL);
    }
    struct sockaddr_in6 v6;
    memset(&v6, 0, sizeof v6);
    v6.sin6_family = AF_INET6;
    char ip[64];
    for (int i = 0; i < 3; i++) {                                     /* three addresses of one /64 */
        snprintf(ip, sizeof ip, "2001:db8:1:2::%x", i + 1);
        inet_pton(AF_INET6, ip, &v6.sin6_addr);
        c[n++] = connguard_open(g, (struct sockaddr *) &v6, -1, &refused);
        CHECK(c[n - 1] != NULL);
    }
    inet_pton(AF_INET6, "2001:db8:1:2:ffff::9", &v6.sin6_addr);
    CHECK(connguard_open(g, (struct sockaddr *) &v6, -1, &refused) == NULL);   /* a fourth of that /64 */
    CHECK_EQ_INT(connguard_refused_count(g), 2);
    connguard_close(g, &c[0]);                                        /* one of a's closes: room again */
    c[0] = connguard_open(g, (struct sockaddr *) &a, -1, &refused);
    CHECK(c[0] != NULL);
    for (int i = 0; i < n; i++)
        connguard_close(g, &c[i]);
    CHECK_EQ_INT(connguard_open_count(g), 0);
    connguard_destroy(&g);
}

static void test_nofile_is_raised_or_the_limit_lowered(void)
{
    struct rlimit saved;
    CHECK_EQ_INT(getrlimit(RLIMIT_NOFILE, &saved), 0);
    struct rlimit rl = saved;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < 600) {
        printf("  # hard RLIMIT_NOFILE %llu too low for this test\n", (unsigned long long) rl.rlim_max);
        return;
    }
    rl.rlim_cur = 300;
    CHECK_EQ_INT(setrlimit(RLIMIT_NOFILE, &rl), 0);
    CHECK_EQ_INT(connguard_fit_nofile(200, 100), 200);              /* raised from 300 to 300 + */
    struct rlimit now;
    getrlimit(RLIMIT_NOFILE, &now);
    CHECK(now.rlim_cur >= 300);
    CHECK_EQ_INT(connguard_fit_nofile(400, 100), 400);
    getrlimit(RLIMIT_NOFILE, &now);
    CHECK(now.rlim_cur >= 500);
    /* a hard limit below what is wanted: the connection limit is lowered to fit */
    pid_t pid = fork();
    if (pid == 0) {
        struct rlimit low = { 256, 256 };
        if (setrlimit(RLIMIT_NOFILE, &low) != 0)
            _exit(2);
        _exit(connguard_fit_nofile(2048, 100) == 156 ? 0 : 1);
    }
    int st = -1;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    setrlimit(RLIMIT_NOFILE, &saved);
}

int main(void)
{
    RUN(test_a_trickling_head_is_cut_at_the_deadline);
    RUN(test_per_client_limit_counts_ipv6_per_64_and_exempts_proxies);
    RUN(test_nofile_is_raised_or_the_limit_lowered);
    return check_done();
}
