/* admin.c — see admin.h. s_matrix[role][action] is the whole policy; tests/unit/test_admin.c checks
 * every cell against a copy written out by hand. */
#include "schema/admin.h"

#include <stdio.h>
#include <string.h>

#define Y 1
#define N 0
static const unsigned char s_matrix[ADMIN_ROLE_COUNT][ADMIN_ACTION_COUNT] = {
    /*                         VIEW RETRY ASSIGN APPROVE REJECT MANAGE WITHDRAW */
    [ADMIN_ROLE_VIEWER]    = { Y,   N,    N,     N,      N,     N,     N },
    [ADMIN_ROLE_OPERATOR]  = { Y,   Y,    Y,     N,      N,     N,     N },
    [ADMIN_ROLE_APPROVER]  = { Y,   Y,    Y,     Y,      Y,     N,     N },
    [ADMIN_ROLE_OWNER]     = { Y,   Y,    Y,     Y,      Y,     Y,     Y },
    [ADMIN_ROLE_TREASURER] = { Y,   Y,    Y,     Y,      Y,     N,     Y },
};
#undef Y
#undef N

#define S_NAME_(id, name) name,
static const char *const s_roles[ADMIN_ROLE_COUNT] = { ADMIN_ROLES(S_NAME_) };
static const char *const s_actions[ADMIN_ACTION_COUNT] = { ADMIN_ACTIONS(S_NAME_) };
#undef S_NAME_

int admin_may(admin_role_t role, admin_action_t action)
{
    if ((unsigned) role >= ADMIN_ROLE_COUNT || (unsigned) action >= ADMIN_ACTION_COUNT)
        return 0;
    return s_matrix[role][action];
}

admin_action_t admin_action_of_desk(desk_action_t action)
{
    switch (action) {
    case DESK_RETRY: return ADMIN_DEPOSIT_RETRY;
    case DESK_ASSIGN: return ADMIN_DEPOSIT_ASSIGN;
    case DESK_APPROVE: return ADMIN_DEPOSIT_APPROVE;
    case DESK_REJECT: return ADMIN_DEPOSIT_REJECT;
    default: return ADMIN_ACTION_COUNT;   /* allowed to nobody */
    }
}

const char *admin_role_name(admin_role_t role)
{
    return (unsigned) role < ADMIN_ROLE_COUNT ? s_roles[role] : "?";
}

int admin_role_from_name(const char *name)
{
    for (int i = 0; name && i < ADMIN_ROLE_COUNT; i++)
        if (strcmp(s_roles[i], name) == 0)
            return i;
    return -1;
}

const char *admin_action_name(admin_action_t action)
{
    return (unsigned) action < ADMIN_ACTION_COUNT ? s_actions[action] : "?";
}

int admin_name_check(const char *name, char *err, size_t errlen)
{
    size_t n = name ? strlen(name) : 0;
    if (n < 1 || n > 32 || name[0] < 'a' || name[0] > 'z') {
        snprintf(err, errlen, "an admin name is 1 to 32 characters and starts with a lower-case letter");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-')) {
            snprintf(err, errlen, "an admin name holds only a-z, 0-9, '.', '_' and '-'");
            return -1;
        }
    }
    return 0;
}

int admin_password_check(const char *name, const char *password, char *err, size_t errlen)
{
    size_t n = password ? strlen(password) : 0;
    if (n < 12 || n > 128) {
        snprintf(err, errlen, "a password is 12 to 128 characters");
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if ((unsigned char) password[i] < 0x20 || password[i] == 0x7f) {
            snprintf(err, errlen, "a password holds no control characters");
            return -1;
        }
    if (name && strcmp(name, password) == 0) {
        snprintf(err, errlen, "a password is not the admin's name");
        return -1;
    }
    return 0;
}
