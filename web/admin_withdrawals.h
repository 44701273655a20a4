/* admin_withdrawals.h — the admin API's withdrawal queue, behind the admin guard (web/admin.h):
 *   GET  /api/admin/withdrawals[?state=STATE&login=N]  newest first (any admin)
 *   GET  /api/admin/withdrawals/{id}                    one withdrawal and its journal timeline
 *   POST /api/admin/withdrawals/{id}/{approve|reject|refund|retransfer} {"reason": "..."}
 * Actions need the withdrawal right (ADMIN_WITHDRAW_DECIDE: treasurer, owner) and are
 * journaled as the admin from the caller's address, with the reason (pipeline_withdraw_act). */
#ifndef KASA_WEB_ADMIN_WITHDRAWALS_H
#define KASA_WEB_ADMIN_WITHDRAWALS_H

#include "actors/pipeline.h"
#include "web/admin.h"

/* Adds the routes to api (before the HTTP server starts). journal_dir is read for timelines.
 * 0, or -1 when the admin API has no room for them. */
int admin_withdrawals_routes(admin_api_t *api, pipeline_t *pipeline, const char *journal_dir);

#endif
