/* test_admins.c — admin accounts in the journal: a one-time password and TOTP secret at add, the
 * password hashed with Argon2id and verified, a login with password and a code computed here, the
 * same code refused afterwards (also after a replay, as after a restart), wrong passwords, unknown
 * names and disabled accounts refused, a reset, a password change, and no password or secret in
 * the journal in the clear; an unknown name costs a real check, and making the accounts runs none. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actors/admins.h"
#include "journal/journal.h"
#include "schema/totp.h"
#include "tests/check.h"
#include "tests/unit/support_tmp.h"

static char s_dir[512];

static journal_t *s_journal(const char *name)
{
    support_tmp_fresh(s_dir, sizeof s_dir, "admins", name);
    char err[256];
    journal_t *j = journal_open(s_dir, NULL, err, sizeof err);
    if (!j)
        fprintf(stderr, "journal_open: %s\n", err);
    return j;
}

/* The current code for a base32 secret at now_s. */
static void s_code(const char *secret, int64_t now_s, int64_t offset_steps, char code[7])
{
    uint8_t key[64];
    size_t n = 0;
    totp_base32_decode(secret, key, sizeof key, &n);
    totp_code(key, n, (uint64_t) (now_s / 30 + offset_steps), 6, code);
}

/* 1 if needle occurs anywhere in the journal's segment files. */
static int s_in_journal(const char *needle)
{
    char cmd[800];
    snprintf(cmd, sizeof cmd, "grep -rqa -- '%s' '%s'", needle, s_dir);
    return system(cmd) == 0;
}

static void test_add_login_once_per_code_and_replay_restores(void)
{
    journal_t *j = s_journal("login");
    admins_t *ad = admins_new();
    CHECK(j && ad);
    if (!j || !ad)
        return;
    char pw[ADMINS_OTP_LEN], secret[ADMINS_SECRET_LEN], err[200];
    CHECK_EQ_INT(admins_add(ad, j, "ayse", ADMIN_ROLE_APPROVER, "cli:root", "cli:host pts/0", pw, secret, err,
                            sizeof err), 0);
    CHECK_EQ_INT(strlen(pw), 20);
    CHECK_EQ_INT(strlen(secret), 32);
    char pw_taken[ADMINS_OTP_LEN], secret_taken[ADMINS_SECRET_LEN];
    CHECK_EQ_INT(admins_add(ad, j, "ayse", ADMIN_ROLE_VIEWER, "cli:root", "", pw_taken, secret_taken, err, sizeof err),
                 -1);
    CHECK(strstr(err, "exists already") != NULL);
    CHECK_EQ_STR(pw_taken, "");   /* a refused add hands out nothing */
    int64_t now = (int64_t) time(NULL);
    char code[7];
    s_code(secret, now, 0, code);
    admin_view_t v;
    CHECK_EQ_INT(admins_login(ad, j, "ayse", "wrong password!!", code, now, "ip:1.2.3.4", &v, err, sizeof err),
                 ADMINS_LOGIN_REFUSED);
    CHECK_EQ_STR(err, "refused");
    CHECK_EQ_INT(admins_login(ad, j, "nobody", pw, code, now, "ip:1.2.3.4", &v, err, sizeof err), ADMINS_LOGIN_REFUSED);
    char wrong[12];
    snprintf(wrong, sizeof wrong, "%06u", (unsigned) (atoi(code) + 1) % 1000000u);
    CHECK_EQ_INT(admins_login(ad, j, "ayse", pw, wrong, now, "ip:1.2.3.4", &v, err, sizeof err), ADMINS_LOGIN_REFUSED);
    CHECK_EQ_INT(admins_login(ad, j, "ayse", pw, code, now, "ip:1.2.3.4", &v, err, sizeof err), ADMINS_LOGIN_OK);
    CHECK_EQ_STR(v.name, "ayse");
    CHECK_EQ_INT(v.role, ADMIN_ROLE_APPROVER);
    CHECK_EQ_INT(v.must_change, 1);
    CHECK_EQ_INT(admins_login(ad, j, "ayse", pw, code, now, "ip:1.2.3.4", &v, err, sizeof err), ADMINS_LOGIN_REFUSED);
    /* the plain password and the secret are nowhere in the journal */
    CHECK(!s_in_journal(pw));
    CHECK(s_in_journal("argon2id"));
    CHECK(s_in_journal("ayse"));

    /* a restart: the same code is still refused, the next one works */
    admins_t *again = admins_new();
    CHECK_EQ_INT(admins_replay(again, s_dir, err, sizeof err), 2);   /* add, login */
    CHECK_EQ_INT(admins_login(again, j, "ayse", pw, code, now, "ip:1.2.3.4", &v, err, sizeof err),
                 ADMINS_LOGIN_REFUSED);
    char next[7];
    s_code(secret, now, 1, next);
    CHECK_EQ_INT(admins_login(again, j, "ayse", pw, next, now, "ip:1.2.3.4", &v, err, sizeof err), ADMINS_LOGIN_OK);
    CHECK_EQ_INT(v.role, ADMIN_ROLE_APPROVER);
    admins_destroy(&again);
    admins_destroy(&ad);
    journal_destroy(&j);
    support_tmp_rmrf(s_dir);
}

static void test_password_change_disable_and_reset(void)
{
    journal_t *j = s_journal("change");
    admins_t *ad = admins_new();
    CHECK(j && ad);
    if (!j || !ad)
        return;
    char pw[ADMINS_OTP_LEN], secret[ADMINS_SECRET_LEN], err[200];
    CHECK_EQ_INT(admins_add(ad, j, "mehmet", ADMIN_ROLE_OPERATOR, "admin:ayse", "ip:1.2.3.4", pw, secret, err,
                            sizeof err), 0);
    CHECK_EQ_INT(admins_set_password(ad, j, "mehmet", "not the otp", "a much better password", "ip:x", err,
                                     sizeof err), -1);
    CHECK_EQ_INT(admins_set_password(ad, j, "mehmet", pw, "short", "ip:x", err, sizeof err), -1);
    CHECK_EQ_INT(admins_set_password(ad, j, "mehmet", pw, pw, "ip:x", err, sizeof err), -1);
    CHECK_EQ_INT(admins_set_password(ad, j, "mehmet", pw, "a much better password", "ip:x", err, sizeof err), 0);
    admin_view_t v;
    CHECK(admins_get(ad, "mehmet", &v) == 0 && v.must_change == 0 && v.disabled == 0);
    int64_t now = (int64_t) time(NULL);
    char code[7];
    s_code(secret, now, 0, code);
    CHECK_EQ_INT(admins_login(ad, j, "mehmet", pw, code, now, "ip:x", &v, err, sizeof err), ADMINS_LOGIN_REFUSED);
    CHECK_EQ_INT(admins_disable(ad, j, "mehmet", "admin:ayse", "ip:1.2.3.4", err, sizeof err), 0);
    CHECK_EQ_INT(admins_login(ad, j, "mehmet", "a much better password", code, now, "ip:x", &v, err, sizeof err),
                 ADMINS_LOGIN_REFUSED);
    CHECK_EQ_INT(admins_disable(ad, j, "nobody", "admin:ayse", "", err, sizeof err), -1);
    char pw2[ADMINS_OTP_LEN], secret2[ADMINS_SECRET_LEN];
    CHECK_EQ_INT(admins_reset(ad, j, "mehmet", "admin:ayse", "ip:1.2.3.4", pw2, secret2, err, sizeof err), 0);
    CHECK(strcmp(secret2, secret) != 0);
    CHECK(admins_get(ad, "mehmet", &v) == 0 && v.must_change == 1 && v.disabled == 0);
    s_code(secret2, now, 0, code);
    CHECK_EQ_INT(admins_login(ad, j, "mehmet", pw2, code, now, "ip:x", &v, err, sizeof err), ADMINS_LOGIN_OK);
    CHECK_EQ_INT(admins_reset(ad, j, "nobody", "admin:ayse", "", pw2, secret2, err, sizeof err), -1);
    CHECK_EQ_INT(admins_add(ad, j, "Bad Name", ADMIN_ROLE_OWNER, "x", "", pw2, secret2, err, sizeof err), -1);
    /* a replay gives the same accounts */
    admins_t *again = admins_new();
    CHECK(admins_replay(again, s_dir, err, sizeof err) > 0);
    CHECK(admins_get(again, "mehmet", &v) == 0 && v.role == ADMIN_ROLE_OPERATOR && v.must_change == 1);
    CHECK_EQ_STR(v.created_by, "admin:ayse");
    CHECK_EQ_INT(admins_count(again), 1);
    admins_destroy(&again);
    admins_destroy(&ad);
    journal_destroy(&j);
    support_tmp_rmrf(s_dir);
}

static double s_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void test_an_unknown_name_costs_a_real_check_and_a_start_costs_none(void)
{
    journal_t *j = s_journal("dummy");
    double t0 = s_now_s();
    admins_t *ad = admins_new();
    double new_s = s_now_s() - t0;
    CHECK(j && ad);
    if (!j || !ad)
        return;
    /* the dummy hash carries a real account's Argon2id cost, and is not a hash of anything */
    const char *dummy = admins_dummy_hash(ad);
    CHECK(strncmp(dummy, "$argon2id$", 10) == 0);
    CHECK_EQ_INT(crypto_pwhash_str_needs_rehash(dummy, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                                crypto_pwhash_MEMLIMIT_INTERACTIVE), 0);
    admins_t *other = admins_new();
    CHECK(other && strcmp(admins_dummy_hash(other), dummy) != 0);   /* a random salt and hash each time */
    admins_destroy(&other);
    char pw[ADMINS_OTP_LEN], secret[ADMINS_SECRET_LEN], err[200], code[7];
    CHECK_EQ_INT(admins_add(ad, j, "ayse", ADMIN_ROLE_VIEWER, "cli:root", "", pw, secret, err, sizeof err), 0);
    int64_t now = (int64_t) time(NULL);
    s_code(secret, now, 0, code);
    /* an unknown name and a known name with a wrong password take the same time (the fastest of a few
     * tries each, as loaded machines go); an unknown name with the known one's password is refused */
    double known_s = 1e9, unknown_s = 1e9;
    admin_view_t v;
    for (int i = 0; i < 3; i++) {
        double a = s_now_s();
        CHECK_EQ_INT(admins_login(ad, j, "ayse", "not her password", code, now, "", &v, err, sizeof err),
                     ADMINS_LOGIN_REFUSED);
        double b = s_now_s();
        CHECK_EQ_INT(admins_login(ad, j, "nobody", pw, code, now, "", &v, err, sizeof err), ADMINS_LOGIN_REFUSED);
        double c = s_now_s();
        known_s = b - a < known_s ? b - a : known_s;
        unknown_s = c - b < unknown_s ? c - b : unknown_s;
    }
    CHECK(unknown_s > known_s / 2 && unknown_s < known_s * 2);
    /* making the accounts at a start runs no Argon2id: far less than one check */
    CHECK(new_s < known_s / 4);
    admins_destroy(&ad);
    journal_destroy(&j);
    support_tmp_rmrf(s_dir);
}

int main(void)
{
    RUN(test_add_login_once_per_code_and_replay_restores);
    RUN(test_password_change_disable_and_reset);
    RUN(test_an_unknown_name_costs_a_real_check_and_a_start_costs_none);
    return check_done();
}
