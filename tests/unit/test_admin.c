/* test_admin.c — the role × action matrix, every cell against a copy written out here by hand; the
 * desk actions map to their admin actions; names and passwords. */
#include <string.h>

#include "schema/admin.h"
#include "tests/check.h"

/* "Y" allowed, "-" not. Columns in the order of ADMIN_ACTIONS. */
static const char *const s_expected[ADMIN_ROLE_COUNT] = {
    /*                       VIEW RETRY ASSIGN APPROVE REJECT MANAGE WITHDRAW */
    [ADMIN_ROLE_VIEWER]    = "Y------",
    [ADMIN_ROLE_OPERATOR]  = "YYY----",
    [ADMIN_ROLE_APPROVER]  = "YYYYY--",
    [ADMIN_ROLE_OWNER]     = "YYYYYYY",
    [ADMIN_ROLE_TREASURER] = "YYYYY-Y",
};

static void test_every_role_and_action_cell(void)
{
    CHECK_EQ_INT(ADMIN_ACTION_COUNT, 7);
    CHECK_EQ_INT(ADMIN_ROLE_COUNT, 5);
    for (int r = 0; r < ADMIN_ROLE_COUNT; r++)
        for (int a = 0; a < ADMIN_ACTION_COUNT; a++) {
            int want = s_expected[r][a] == 'Y';
            if (admin_may((admin_role_t) r, (admin_action_t) a) != want) {
                fprintf(stderr, "  %s may %s: got %d, want %d\n", admin_role_name((admin_role_t) r),
                        admin_action_name((admin_action_t) a), !want, want);
                CHECK(0);
            }
        }
    CHECK_EQ_INT(admin_may((admin_role_t) ADMIN_ROLE_COUNT, ADMIN_VIEW), 0);
    CHECK_EQ_INT(admin_may(ADMIN_ROLE_OWNER, (admin_action_t) ADMIN_ACTION_COUNT), 0);
    CHECK_EQ_INT(admin_may((admin_role_t) -1, ADMIN_VIEW), 0);
}

static void test_desk_actions_need_their_admin_action(void)
{
    CHECK_EQ_INT(admin_action_of_desk(DESK_RETRY), ADMIN_DEPOSIT_RETRY);
    CHECK_EQ_INT(admin_action_of_desk(DESK_ASSIGN), ADMIN_DEPOSIT_ASSIGN);
    CHECK_EQ_INT(admin_action_of_desk(DESK_APPROVE), ADMIN_DEPOSIT_APPROVE);
    CHECK_EQ_INT(admin_action_of_desk(DESK_REJECT), ADMIN_DEPOSIT_REJECT);
    CHECK_EQ_INT(admin_may(ADMIN_ROLE_OWNER, admin_action_of_desk((desk_action_t) 99)), 0);
    /* an operator may retry and assign but not approve or reject */
    CHECK(admin_may(ADMIN_ROLE_OPERATOR, admin_action_of_desk(DESK_ASSIGN)));
    CHECK(!admin_may(ADMIN_ROLE_OPERATOR, admin_action_of_desk(DESK_APPROVE)));
}

/* Withdrawals move the broker's own coins out: a deposit approver is not a withdrawal approver; a
 * treasurer is, and an owner; a treasurer does not manage admins. */
static void test_a_deposit_approver_is_not_a_withdrawal_approver(void)
{
    CHECK(!admin_may(ADMIN_ROLE_APPROVER, ADMIN_WITHDRAW_DECIDE));
    CHECK(admin_may(ADMIN_ROLE_TREASURER, ADMIN_WITHDRAW_DECIDE));
    CHECK(admin_may(ADMIN_ROLE_OWNER, ADMIN_WITHDRAW_DECIDE));
    CHECK(admin_may(ADMIN_ROLE_TREASURER, ADMIN_DEPOSIT_APPROVE));
    CHECK(!admin_may(ADMIN_ROLE_TREASURER, ADMIN_ADMIN_MANAGE));
    CHECK_EQ_STR(admin_action_name(ADMIN_WITHDRAW_DECIDE), "withdrawal.decide");
    /* snapshots keep a role's number: the roles before treasurer keep theirs */
    CHECK_EQ_INT(ADMIN_ROLE_OWNER, 3);
    CHECK_EQ_INT(ADMIN_ROLE_TREASURER, 4);
}

static void test_role_names_round_trip(void)
{
    static const char *const names[] = { "viewer", "operator", "approver", "owner", "treasurer" };
    for (int i = 0; i < ADMIN_ROLE_COUNT; i++) {
        CHECK_EQ_STR(admin_role_name((admin_role_t) i), names[i]);
        CHECK_EQ_INT(admin_role_from_name(names[i]), i);
    }
    CHECK_EQ_INT(admin_role_from_name("Owner"), -1);
    CHECK_EQ_INT(admin_role_from_name("root"), -1);
    CHECK_EQ_INT(admin_role_from_name(NULL), -1);
    CHECK_EQ_STR(admin_role_name((admin_role_t) 7), "?");
    CHECK_EQ_STR(admin_action_name(ADMIN_DEPOSIT_APPROVE), "deposit.approve");
}

static void test_names_and_passwords(void)
{
    char err[128];
    CHECK_EQ_INT(admin_name_check("ayse.k", err, sizeof err), 0);
    CHECK_EQ_INT(admin_name_check("m_2-x", err, sizeof err), 0);
    const char *bad[] = { "", "Ayse", "1ayse", "ay se", "ayşe", "a\"b", "abcdefghijabcdefghijabcdefghijabc", NULL };
    for (int i = 0; bad[i]; i++)
        CHECK_EQ_INT(admin_name_check(bad[i], err, sizeof err), -1);
    CHECK_EQ_INT(admin_name_check(NULL, err, sizeof err), -1);
    CHECK_EQ_INT(admin_password_check("ayse", "correct horse battery", err, sizeof err), 0);
    CHECK_EQ_INT(admin_password_check("ayse", "short", err, sizeof err), -1);
    CHECK_EQ_INT(admin_password_check("ayse.kaya.12", "ayse.kaya.12", err, sizeof err), -1);
    CHECK_EQ_INT(admin_password_check("ayse", "tab\there is bad", err, sizeof err), -1);
    char longpw[140];
    memset(longpw, 'x', 129);
    longpw[129] = '\0';
    CHECK_EQ_INT(admin_password_check("ayse", longpw, err, sizeof err), -1);
}

int main(void)
{
    RUN(test_every_role_and_action_cell);
    RUN(test_desk_actions_need_their_admin_action);
    RUN(test_a_deposit_approver_is_not_a_withdrawal_approver);
    RUN(test_role_names_round_trip);
    RUN(test_names_and_passwords);
    return check_done();
}
