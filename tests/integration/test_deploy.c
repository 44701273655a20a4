/* test_deploy.c — the service files in tools/deploy/: the systemd unit passes `systemd-analyze
 * verify` with no complaint (where systemd is present); the nginx site passes `nginx -t` (Debian's
 * nginx) and, run for real in front of kasa, passes a Cobo webhook signed with the underscore
 * header spellings (Biz_Timestamp, Biz_Resp_Signature) through to a durable 201, and serves the
 * panel; the PM2 file loads in node and runs one kasa, natively, with a clean-stop timeout. A tool
 * that is missing is reported and its check skipped. */
#include "tests/check.h"
#include "tests/integration/harness.h"

static h_env_t s_env;
static int s_ready;
static char s_deploy[512];   /* tools/deploy, absolute */

static int s_have(const char *tool)
{
    char cmd[160];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", tool);
    return system(cmd) == 0;
}

/* Runs a shell command line with its output into path; the exit code. */
static int s_sh(const char *cmdline, const char *out_path)
{
    char *argv[] = { "/bin/sh", "-c", (char *) cmdline, NULL };
    return h_run(argv, out_path, NULL, 30000);
}

static void test_systemd_unit_verifies(void)
{
    CHECK(s_ready);
    if (!s_ready)
        return;
    if (!s_have("systemd-analyze")) {
        h_log("no systemd-analyze here: the unit is not verified");
        return;
    }
    /* @PREFIX@ → a prefix whose bin/kasa is the binary under test (verify checks ExecStart) */
    char cmd[4096], out[600];
    snprintf(cmd, sizeof cmd,
             "set -e; p='%s/prefix'; mkdir -p \"$p/bin\"; ln -sf '%s' \"$p/bin/kasa\"; "
             "sed \"s#@PREFIX@#$p#g\" '%s/kasa.service' > '%s/kasa.service'; "
             "systemd-analyze verify '%s/kasa.service'",
             s_env.dir, s_env.kasa_bin, s_deploy, s_env.dir, s_env.dir);
    snprintf(out, sizeof out, "%s/systemd-verify.out", s_env.dir);
    CHECK_EQ_INT(s_sh(cmd, out), 0);
    char *text = h_read_file(out, NULL);
    CHECK(text && !strstr(text, "kasa.service:"));   /* no "unknown key", no warning about our file */
    if (text && strstr(text, "kasa.service:"))
        h_log("systemd-analyze: %s", text);
    free(text);
    /* the hardening the service relies on is there */
    text = h_read_file(strcat(strcpy((char[600]){ 0 }, s_deploy), "/kasa.service"), NULL);
    CHECK(text && strstr(text, "\nProtectSystem=strict\n") && strstr(text, "\nNoNewPrivileges=yes\n") &&
          strstr(text, "\nUser=kasa\n") && strstr(text, "\nStateDirectory=kasa\n") &&
          strstr(text, "\nRestart=on-failure\n") && strstr(text, "\nLimitNOFILE="));
    free(text);
}

/* Writes an nginx.conf around the site into DIR/nginx/, listening on the given ports and proxying to
 * kasa's port. Returns 0, or -1. */
static int s_nginx_conf(int http_port, int https_port)
{
    char cmd[8192], out[600];
    snprintf(cmd, sizeof cmd,
             "set -e; d='%s/nginx'; mkdir -p \"$d/logs\"; "
             "openssl req -x509 -newkey rsa:2048 -nodes -keyout \"$d/key.pem\" -out \"$d/cert.pem\" -days 2 "
             "-subj /CN=pay.example.com -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1; "
             "sed -e \"s#/etc/ssl/certs/kasa.pem#$d/cert.pem#\" -e \"s#/etc/ssl/private/kasa.key#$d/key.pem#\" "
             "-e \"s#/var/log/nginx/#$d/logs/#\" -e \"s#127.0.0.1:8000#127.0.0.1:%d#\" -e \"s#127.0.0.1:8001#127.0.0.1:%d#\" "
             "-e \"s#listen 80;#listen 127.0.0.1:%d;#\" -e \"s#listen \\[::\\]:80;##\" "
             "-e \"s#listen 443 ssl http2;#listen 127.0.0.1:%d ssl http2;#\" -e \"s#listen \\[::\\]:443 ssl http2;##\" "
             "'%s/nginx-kasa.conf' > \"$d/site.conf\"; "
             "printf 'pid %%s/nginx.pid;\\nerror_log %%s/logs/error.log;\\nevents { worker_connections 256; }\\n"
             "http {\\n  access_log %%s/logs/access.log;\\n  client_body_temp_path %%s/tmp;\\n"
             "  proxy_temp_path %%s/tmp;\\n  include %%s/site.conf;\\n}\\n' \"$d\" \"$d\" \"$d\" \"$d\" \"$d\" \"$d\" "
             "> \"$d/nginx.conf\"; mkdir -p \"$d/tmp\"",
             s_env.dir, s_env.kasa_port, s_env.webhook_port, http_port, https_port, s_deploy);
    snprintf(out, sizeof out, "%s/nginx-setup.out", s_env.dir);
    return s_sh(cmd, out) == 0 ? 0 : -1;
}

static void test_nginx_site_passes_nginx_t_and_proxies_a_webhook(void)
{
    CHECK(s_ready);
    if (!s_ready)
        return;
    if (!s_have("nginx") || !s_have("openssl")) {
        h_log("no nginx (or openssl) here: the site is not checked");
        return;
    }
    int http_port = h_free_port(), https_port = h_free_port();
    CHECK_EQ_INT(s_nginx_conf(http_port, https_port), 0);
    char cmd[2048], out[600];
    snprintf(cmd, sizeof cmd, "nginx -t -q -c '%s/nginx/nginx.conf' -p '%s/nginx/'", s_env.dir, s_env.dir);
    snprintf(out, sizeof out, "%s/nginx-t.out", s_env.dir);
    int rc = s_sh(cmd, out);
    CHECK_EQ_INT(rc, 0);
    if (rc != 0) {
        h_tail(out, 20);
        return;
    }
    /* run it for real in front of kasa */
    snprintf(cmd, sizeof cmd, "exec nginx -c '%s/nginx/nginx.conf' -p '%s/nginx/' -g 'daemon off; master_process off;'",
             s_env.dir, s_env.dir);
    snprintf(out, sizeof out, "%s/nginx.out", s_env.dir);
    char *argv[] = { "/bin/sh", "-c", cmd, NULL };
    pid_t ng = h_spawn(argv, out, NULL);
    CHECK_EQ_INT(h_wait_port(https_port, 10000), 0);

    CHECK_EQ_INT(h_link(&s_env, "TDeployNginx00000000000000000001", 100001), 0);
    h_tx_t tx = h_tx("TDeployNginx00000000000000000001", "10", "TRON_USDT");
    snprintf(tx.tx_id, sizeof tx.tx_id, "d0d0d0d0-0000-4000-8000-00000000d0d0");
    jbuf_t body;
    jbuf_init(&body);
    h_webhook_body(&body, "evt-deploy-1", "wallets.transaction.succeeded", &tx);
    CURL *c = curl_easy_init();
    snprintf(h_https_ca, sizeof h_https_ca, "%s/nginx/cert.pem", s_env.dir);   /* its own certificate, for 127.0.0.1 */
    char base[64];
    snprintf(base, sizeof base, "https://127.0.0.1:%d", https_port);
    h_resp_t r = h_post_webhook_url(c, base, body.data, body.len, 1);   /* Biz_Timestamp, Biz_Resp_Signature */
    CHECK_EQ_INT(r.status, 201);
    h_resp_free(&r);
    jbuf_free(&body);
    h_jinfo_t info;
    CHECK_EQ_INT(h_journal_info(s_env.journal, tx.tx_id, &info), 0);
    CHECK(info.state >= 0);
    /* the panel through nginx; plain http is redirected to https */
    char url[128];
    snprintf(url, sizeof url, "%s/", base);
    r = h_http_on(c, "GET", url, NULL, NULL, 0, 5000);
    CHECK_EQ_INT(r.status, 200);
    h_resp_free(&r);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", http_port);
    r = h_http("GET", url, NULL);
    CHECK_EQ_INT(r.status, 301);
    h_resp_free(&r);
    /* the webhook path takes POST only */
    snprintf(url, sizeof url, "%s/cobo/webhook", base);
    r = h_http_on(c, "GET", url, NULL, NULL, 0, 5000);
    CHECK_EQ_INT(r.status, 403);
    h_resp_free(&r);
    curl_easy_cleanup(c);
    h_https_ca[0] = '\0';
    h_stop(&ng, 5000);
}

static void test_pm2_file_runs_one_native_kasa(void)
{
    CHECK(s_ready);
    if (!s_ready)
        return;
    if (!s_have("node")) {
        h_log("no node here: the PM2 file is not checked");
        return;
    }
    char cmd[2048], out[600];
    snprintf(cmd, sizeof cmd,
             "node -e \"const a = require('%s/ecosystem.config.js').apps; const k = a[0];"
             " if (a.length !== 1 || k.name !== 'kasa' || k.interpreter !== 'none' || k.instances !== 1 ||"
             " k.exec_mode !== 'fork' || !/^serve --config /.test(k.args) || !(k.kill_timeout >= 20000) ||"
             " k.autorestart !== true) { console.error(JSON.stringify(k)); process.exit(1); }\"",
             s_deploy);
    snprintf(out, sizeof out, "%s/pm2.out", s_env.dir);
    CHECK_EQ_INT(s_sh(cmd, out), 0);
}

static void test_logrotate_file_is_sane(void)
{
    CHECK(s_ready);
    if (!s_ready)
        return;
    char path[600];
    snprintf(path, sizeof path, "%s/kasa.logrotate", s_deploy);
    char *text = h_read_file(path, NULL);
    CHECK(text && strstr(text, "/var/log/kasa/*.log {") && strstr(text, "copytruncate") && strstr(text, "rotate "));
    free(text);
    if (!s_have("logrotate"))
        return;
    char cmd[2048], out[600];
    snprintf(cmd, sizeof cmd, "logrotate -d -s '%s/logrotate.state' '%s'", s_env.dir, path);
    snprintf(out, sizeof out, "%s/logrotate.out", s_env.dir);
    CHECK_EQ_INT(s_sh(cmd, out), 0);
}

int main(void)
{
    char cwd[256];
    if (getcwd(cwd, sizeof cwd))
        snprintf(s_deploy, sizeof s_deploy, "%s/tools/deploy", cwd);
    s_ready = h_env_init(&s_env, "deploy") == 0 && h_sims_start(&s_env, NULL) == 0 &&
              h_config_write(&s_env, NULL) == 0 && h_kasa_start(&s_env) == 0;
    RUN(test_systemd_unit_verifies);
    RUN(test_nginx_site_passes_nginx_t_and_proxies_a_webhook);
    RUN(test_pm2_file_runs_one_native_kasa);
    RUN(test_logrotate_file_is_sane);
    int rc = check_done();
    h_env_finish(&s_env, rc != 0);
    return rc;
}
