/* admin_withdrawals.h — the admin API's withdrawal queue, behind the admin guard (web/admin.h):
 *   GET  /api/admin/withdrawals[?state=STATE[,STATE...]&login=N]  newest first (any admin), and
 *        "totals": per token, the count and exact token amount of those waiting for approvers
 *        (DEBITED), being paid (APPROVED, SENT), held and completed, and to_pay (the first three)
 *   GET  /api/admin/withdrawals/{id}                    one withdrawal and its journal timeline
 * Each withdrawal is withdrawals_view_json's object with "approvers" (names) and "approvals_needed";
 * both GET answers say whether the caller may act on withdrawals ("may_decide").
 *   POST /api/admin/withdrawals/{id}/{approve|reject|refund|retransfer} {"reason": "..."}
 * Actions need the withdrawal right (ADMIN_WITHDRAW_DECIDE: treasurer, owner) and are
 * journaled as the admin from the caller's address, with the reason (pipeline_withdraw_act). */
#ifndef KASA_WEB_ADMIN_WITHDRAWALS_H
#define KASA_WEB_ADMIN_WITHDRAWALS_H

#include "actors/pipeline.h"
#include "web/admin.h"

/* Adds the routes to api (before the HTTP server starts). cfg (not owned, outlives the server) gives
 * the journal read for timelines and the approval limits. 0, or -1 when the admin API has no room. */
int admin_withdrawals_routes(admin_api_t *api, pipeline_t *pipeline, const config_t *cfg);

#endif
