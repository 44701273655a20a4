/* test_claims.c — cluster mode's claim decisions (actors/claims.h), without MongoDB: what a node does
 * with a claims document (free, held by me, held by another live node, expired, released final) and
 * the fence before an MT5 call (send, wait out a settle time or a short lease, never send on a lost
 * epoch). The MongoDB side is proved by tests/integration/test_cluster.c. */
#include "tests/check.h"

#include <string.h>

#include "actors/claims.h"

#define ME "node-a"
#define NOW 1700000000000LL
#define LEASE 30000
#define GUARD (LEASE / 3)

static claims_doc_t s_doc(const char *node, int32_t epoch, int64_t lease_until_ms, int done)
{
    claims_doc_t d;
    memset(&d, 0, sizeof d);
    d.exists = 1;
    snprintf(d.node, sizeof d.node, "%s", node);
    d.epoch = epoch;
    d.lease_until_ms = lease_until_ms;
    d.done = done;
    return d;
}

static void test_no_document_is_free(void)
{
    claims_doc_t d;
    memset(&d, 0, sizeof d);
    CHECK_EQ_INT(claims_decide(&d, ME, NOW), CLAIMS_FREE);
}

static void test_held_by_me_is_mine_live_or_not(void)
{
    claims_doc_t live = s_doc(ME, 3, NOW + 1000, 0);
    claims_doc_t ended = s_doc(ME, 3, NOW - 1000, 0);   /* nobody took it: renewing on epoch 3 is safe */
    CHECK_EQ_INT(claims_decide(&live, ME, NOW), CLAIMS_MINE);
    CHECK_EQ_INT(claims_decide(&ended, ME, NOW), CLAIMS_MINE);
}

static void test_held_by_another_live_node_is_left_alone(void)
{
    claims_doc_t d = s_doc("node-b", 1, NOW + 1, 0);
    CHECK_EQ_INT(claims_decide(&d, ME, NOW), CLAIMS_OTHER_LIVE);
    /* a node id that only starts like mine is another node */
    claims_doc_t longer = s_doc(ME "x", 1, NOW + 5000, 0);
    CHECK_EQ_INT(claims_decide(&longer, ME, NOW), CLAIMS_OTHER_LIVE);
}

static void test_another_nodes_expired_lease_is_taken_over_from_its_end_exactly(void)
{
    claims_doc_t d = s_doc("node-b", 2, NOW, 0);
    CHECK_EQ_INT(claims_decide(&d, ME, NOW - 1), CLAIMS_OTHER_LIVE);
    CHECK_EQ_INT(claims_decide(&d, ME, NOW), CLAIMS_EXPIRED);
    CHECK_EQ_INT(claims_decide(&d, ME, NOW + 60000), CLAIMS_EXPIRED);
}

static void test_a_released_claim_is_done_for_every_node(void)
{
    claims_doc_t mine = s_doc(ME, 1, 0, 1), other = s_doc("node-b", 4, 0, 1);
    CHECK_EQ_INT(claims_decide(&mine, ME, NOW), CLAIMS_DONE);
    CHECK_EQ_INT(claims_decide(&other, ME, NOW), CLAIMS_DONE);   /* lease 0 ended long ago: still never taken */
}

static void test_fence_sends_on_a_renewed_lease(void)
{
    int64_t wait = -1;
    CHECK_EQ_INT(claims_fence_decide(1, NOW + LEASE, 0, NOW, GUARD, &wait), CLAIMS_SEND);
    CHECK_EQ_INT(wait, 0);
}

static void test_fence_never_sends_on_a_lost_epoch(void)
{
    int64_t wait = -1;
    /* the conditional renewal matched nothing: whatever the lease in memory says */
    CHECK_EQ_INT(claims_fence_decide(0, NOW + LEASE, 0, NOW, GUARD, &wait), CLAIMS_LOST);
    CHECK_EQ_INT(claims_fence_decide(0, NOW + LEASE, NOW + 99999, NOW, GUARD, &wait), CLAIMS_LOST);
}

static void test_fence_waits_the_settle_time_after_a_take_over(void)
{
    int64_t wait = 0;
    CHECK_EQ_INT(claims_fence_decide(1, NOW + LEASE, NOW + 2500, NOW, GUARD, &wait), CLAIMS_WAIT);
    CHECK_EQ_INT(wait, 2500);
    CHECK_EQ_INT(claims_fence_decide(1, NOW + LEASE, NOW + 2500, NOW + 2500, GUARD, &wait), CLAIMS_SEND);
}

static void test_fence_without_mongodb_sends_only_on_a_lease_with_the_guard_left(void)
{
    int64_t wait = 0;
    /* MongoDB did not answer: the last lease known decides */
    CHECK_EQ_INT(claims_fence_decide(-1, NOW + GUARD, 0, NOW, GUARD, &wait), CLAIMS_SEND);
    CHECK_EQ_INT(claims_fence_decide(-1, NOW + GUARD - 1, 0, NOW, GUARD, &wait), CLAIMS_WAIT);
    CHECK(wait > 0 && wait <= GUARD);
    CHECK_EQ_INT(claims_fence_decide(-1, NOW - 5000, 0, NOW, GUARD, &wait), CLAIMS_WAIT);   /* ended: never */
    /* a renewal that answered after most of the lease was gone (a paused process) does not send either */
    CHECK_EQ_INT(claims_fence_decide(1, NOW + 10, 0, NOW, GUARD, &wait), CLAIMS_WAIT);
}

static void test_names(void)
{
    CHECK_EQ_STR(claims_decision_name(CLAIMS_EXPIRED), "expired");
    CHECK_EQ_STR(claims_decision_name((claims_decision_t) 99), "?");
    CHECK_EQ_STR(claims_fence_name(CLAIMS_LOST), "lost");
}

int main(void)
{
    RUN(test_no_document_is_free);
    RUN(test_held_by_me_is_mine_live_or_not);
    RUN(test_held_by_another_live_node_is_left_alone);
    RUN(test_another_nodes_expired_lease_is_taken_over_from_its_end_exactly);
    RUN(test_a_released_claim_is_done_for_every_node);
    RUN(test_fence_sends_on_a_renewed_lease);
    RUN(test_fence_never_sends_on_a_lost_epoch);
    RUN(test_fence_waits_the_settle_time_after_a_take_over);
    RUN(test_fence_without_mongodb_sends_only_on_a_lease_with_the_guard_left);
    RUN(test_names);
    return check_done();
}
