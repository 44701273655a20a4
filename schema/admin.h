/* admin.h — the broker's staff: roles, what each role may do, and the rules on admin names and
 * passwords. One table (admin.c) says for every role and every action whether it is allowed; every
 * door (the admin API, the control socket, Telegram) asks admin_may() before it acts. Pure: no I/O.
 *
 * Roles: viewer sees everything; operator also retries and assigns held deposits; approver also
 * approves and rejects them; treasurer is an approver who also decides withdrawals (approve, reject,
 * refund, transfer again: money leaving the broker's wallet, so not every deposit approver's right);
 * owner may do everything, managing admins included. (treasurer comes after owner in the enum only
 * because snapshots keep a role's number.) New kinds of work add their actions to ADMIN_ACTIONS and
 * one column to the table. */
#ifndef KASA_SCHEMA_ADMIN_H
#define KASA_SCHEMA_ADMIN_H

#include <stddef.h>

#include "schema/desk.h"

#define ADMIN_ROLES(X) X(VIEWER, "viewer") X(OPERATOR, "operator") X(APPROVER, "approver") X(OWNER, "owner") \
                          X(TREASURER, "treasurer")

#define ADMIN_ACTIONS(X)                                                  \
    X(VIEW, "view")                     /* read every page and list    */ \
    X(DEPOSIT_RETRY, "deposit.retry")   /* schema/desk.h DESK_RETRY    */ \
    X(DEPOSIT_ASSIGN, "deposit.assign") /* DESK_ASSIGN                 */ \
    X(DEPOSIT_APPROVE, "deposit.approve") /* DESK_APPROVE              */ \
    X(DEPOSIT_REJECT, "deposit.reject") /* DESK_REJECT                 */ \
    X(ADMIN_MANAGE, "admin.manage")     /* add, disable, reset admins  */ \
    X(WITHDRAW_DECIDE, "withdrawal.decide") /* approve, reject, refund, retransfer a withdrawal */

#define ADMIN_ROLE_ENUM_(id, name) ADMIN_ROLE_##id,
#define ADMIN_ACTION_ENUM_(id, name) ADMIN_##id,
typedef enum { ADMIN_ROLES(ADMIN_ROLE_ENUM_) ADMIN_ROLE_COUNT } admin_role_t;
typedef enum { ADMIN_ACTIONS(ADMIN_ACTION_ENUM_) ADMIN_ACTION_COUNT } admin_action_t;
#undef ADMIN_ROLE_ENUM_
#undef ADMIN_ACTION_ENUM_

/* 1 if role may do action; 0 otherwise, and for anything out of range. */
int admin_may(admin_role_t role, admin_action_t action);

/* The admin action a desk action needs. */
admin_action_t admin_action_of_desk(desk_action_t action);

/* Names: "viewer", "deposit.retry"; "?" out of range. Name → value, -1 if unknown. */
const char *admin_role_name(admin_role_t role);
int admin_role_from_name(const char *name);
const char *admin_action_name(admin_action_t action);

/* An admin name: 1..32 of [a-z0-9._-], starting with a letter. 0 or -1 with a reason. */
int admin_name_check(const char *name, char *err, size_t errlen);
/* A new password: 12..128 bytes, no control characters, not the admin's name. 0 or -1 with a reason. */
int admin_password_check(const char *name, const char *password, char *err, size_t errlen);

#endif
