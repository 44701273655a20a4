/* test_mt5_cli.c — `kasa sim mt5` and `kasa sim telegram` as separate processes ($KASA_BIN, set by
 * tests/run.sh): they start on port 0, say where they listen, serve the real protocol, and end
 * cleanly on SIGTERM. Without KASA_BIN the tests say so and pass (the in-process tests cover the
 * protocol). */
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "actors/mt5.h"
#include "actors/telegram.h"
#include "tests/check.h"

/* Spawns argv with stdout on a pipe; reads the "listening on http://127.0.0.1:PORT" line. */
static pid_t s_spawn(char **argv, int *port)
{
    int fds[2];
    *port = 0;
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    FILE *in = fdopen(fds[0], "r");
    char line[256];
    if (in && fgets(line, sizeof line, in)) {
        const char *p = strstr(line, "http://127.0.0.1:");
        if (p)
            *port = atoi(p + strlen("http://127.0.0.1:"));
    }
    if (in)
        fclose(in);
    return pid;
}

static int s_stop(pid_t pid)
{
    int status = -1;
    kill(pid, SIGTERM);
    for (int i = 0; i < 200; i++) { /* up to 10 s */
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        usleep(50000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

static void test_sim_mt5_process_serves_and_stops(void)
{
    const char *bin = getenv("KASA_BIN");
    if (!bin || access(bin, X_OK) != 0) {
        printf("  (KASA_BIN not set: process test skipped)\n");
        return;
    }
    char *argv[] = { (char *) bin, "sim", "mt5", "--listen", "127.0.0.1:0", "--manager", "1000:Mgr-pw",
                     "--account", "100001:pw:10.00", "--drop-reply", "0", "--delay-ms", "0",
                     "--session-loss", "0", NULL };
    int port = 0;
    pid_t pid = s_spawn(argv, &port);
    CHECK(pid > 0);
    CHECK(port > 0);
    if (pid <= 0 || port <= 0)
        return;
    char url[64], err[160] = "";
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    mt5_client_t *c = mt5_client_new(url, 1000, "Mgr-pw", NULL, 5000);
    uint64_t ticket = 0;
    mt5_user_t u;
    CHECK_EQ_INT(mt5_balance(c, 100001, 1, 2, "cli", &ticket, err, sizeof err), MT5_OK);
    CHECK_EQ_INT(mt5_user_get(c, 100001, &u, err, sizeof err), MT5_OK);
    CHECK_EQ_STR(u.balance, "10.01");
    mt5_client_destroy(&c);
    CHECK_EQ_INT(s_stop(pid), 0);
}

static void test_sim_mt5_refuses_bad_options(void)
{
    const char *bin = getenv("KASA_BIN");
    if (!bin || access(bin, X_OK) != 0)
        return;
    char *argv[] = { (char *) bin, "sim", "mt5", "--listen", "127.0.0.1:0", "--manager", "1000:pw",
                     "--account", "100001:pw:1.001", NULL }; /* 3 decimals for a 2-digit currency */
    int port = 0;
    pid_t pid = s_spawn(argv, &port);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 2);
    CHECK_EQ_INT(port, 0);
}

static void test_sim_telegram_process_serves_and_stops(void)
{
    const char *bin = getenv("KASA_BIN");
    if (!bin || access(bin, X_OK) != 0)
        return;
    char *argv[] = { (char *) bin, "sim", "telegram", "--listen", "127.0.0.1:0", "--token", "42:tok",
                     "--fail-rate", "0", NULL };
    int port = 0;
    pid_t pid = s_spawn(argv, &port);
    CHECK(port > 0);
    if (pid <= 0 || port <= 0)
        return;
    char url[64], err[160] = "";
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    telegram_t *c = telegram_new(url, "42:tok", 5000);
    CHECK_EQ_INT(telegram_send(c, "7", "<b>hi</b>", err, sizeof err), TELEGRAM_OK);
    telegram_destroy(&c);
    CHECK_EQ_INT(s_stop(pid), 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    setenv("KASA_LOG_LEVEL", "warn", 0);
    RUN(test_sim_mt5_process_serves_and_stops);
    RUN(test_sim_mt5_refuses_bad_options);
    RUN(test_sim_telegram_process_serves_and_stops);
    curl_global_cleanup();
    return check_done();
}
