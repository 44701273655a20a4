/* mongo.c — see mongo.h. */
#include "schema/mongo.h"

#include <stdio.h>
#include <string.h>

#include "schema/json.h"

/* Every index kasa ensures. The unique ones are what make the projection safe to replay: a write is
 * an upsert by the unique key, so projecting a record twice leaves one document. */
static const mongo_index_t s_indexes[] = {
    { MONGO_TRANSITIONS, "node_1_lsn_1", { "node", "lsn", NULL }, 1 },
    { MONGO_TRANSITIONS, "transaction_id_1_lsn_1", { "transaction_id", "lsn", NULL }, 0 },
    { MONGO_DEPOSITS, "transaction_id_1", { "transaction_id", NULL }, 1 },
    { MONGO_DEPOSITS, "login_1_created_1", { "login", "created", NULL }, 0 },
    { MONGO_DEPOSITS, "state_1_updated_1", { "state", "updated", NULL }, 0 },
    { MONGO_DEPOSITS, "created_1", { "created", NULL }, 0 },      /* the panels' views (actors/views.h): */
    { MONGO_DEPOSITS, "tx_hash_1", { "tx_hash", NULL }, 0 },      /* newest first, a search by chain   */
    { MONGO_DEPOSITS, "address_1", { "address", NULL }, 0 },      /* hash or by address                */
    { MONGO_ADDRESSES, "address_1", { "address", NULL }, 1 },
    { MONGO_ADDRESSES, "login_1", { "login", NULL }, 0 },
    { MONGO_NODES, "node_1", { "node", NULL }, 1 },
};

static const char *const s_collections[] = { MONGO_TRANSITIONS, MONGO_DEPOSITS, MONGO_ADDRESSES, MONGO_NODES };

const mongo_index_t *mongo_indexes(size_t *count)
{
    *count = sizeof s_indexes / sizeof s_indexes[0];
    return s_indexes;
}

const mongo_index_t *mongo_indexes_of(const char *collection, size_t *count)
{
    size_t n = sizeof s_indexes / sizeof s_indexes[0], first = 0;
    *count = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(s_indexes[i].collection, collection) == 0 && (*count)++ == 0)
            first = i;
    return *count ? &s_indexes[first] : NULL;
}

const char *const *mongo_collections(size_t *count)
{
    *count = sizeof s_collections / sizeof s_collections[0];
    return s_collections;
}

void mongo_index_command(const mongo_index_t *ix, bson_t *cmd)
{
    bson_t indexes, one, key;
    bson_init(cmd);
    BSON_APPEND_UTF8(cmd, "createIndexes", ix->collection);
    BSON_APPEND_ARRAY_BEGIN(cmd, "indexes", &indexes);
    BSON_APPEND_DOCUMENT_BEGIN(&indexes, "0", &one);
    BSON_APPEND_DOCUMENT_BEGIN(&one, "key", &key);
    for (int i = 0; i < 3 && ix->fields[i]; i++)
        BSON_APPEND_INT32(&key, ix->fields[i], 1);
    bson_append_document_end(&one, &key);
    BSON_APPEND_UTF8(&one, "name", ix->name);
    if (ix->unique)
        BSON_APPEND_BOOL(&one, "unique", true);
    bson_append_document_end(&indexes, &one);
    bson_append_array_end(cmd, &indexes);
}

int mongo_transition_doc(const record_t *r, uint64_t lsn, const char *node, bson_t *doc)
{
    jbuf_t b;
    jbuf_init(&b);
    record_to_json(r, lsn, &b);
    bson_t parsed;
    char err[96];
    int rc = json_parse(b.data, b.len, &parsed, err, sizeof err);
    jbuf_free(&b);
    if (rc != 0)
        return -1;
    bson_init(doc);
    BSON_APPEND_UTF8(doc, "node", node);
    BSON_APPEND_INT64(doc, "lsn", (int64_t) lsn);
    BSON_APPEND_DATE_TIME(doc, "time", r->time_ms);
    bson_iter_t it;
    if (bson_iter_init(&it, &parsed)) {
        while (bson_iter_next(&it)) {
            const char *key = bson_iter_key(&it);
            if (strcmp(key, "lsn") == 0 || strcmp(key, "time") == 0)
                continue;
            const bson_value_t *v = bson_iter_value(&it);
            bson_append_value(doc, strcmp(key, "tx_id") == 0 ? "transaction_id" : key, -1, v);
        }
    }
    bson_destroy(&parsed);
    return 0;
}

void mongo_uri_redact(const char *uri, char *buf, size_t len)
{
    if (!len)
        return;
    buf[0] = '\0';
    if (!uri)
        return;
    const char *scheme_end = strstr(uri, "://");
    const char *rest = scheme_end ? scheme_end + 3 : uri;
    const char *query = strchr(rest, '?');
    size_t rest_len = query ? (size_t) (query - rest) : strlen(rest);
    /* userinfo ends at the last '@' before the path or query */
    const char *at = NULL;
    for (const char *p = rest; p < rest + rest_len && *p != '/'; p++)
        if (*p == '@')
            at = p;
    size_t n = 0;
#define PUT_(s, l) do { size_t l_ = (l); if (n + l_ >= len) l_ = len - 1 - n; memcpy(buf + n, (s), l_); n += l_; buf[n] = '\0'; } while (0)
    PUT_(uri, (size_t) (rest - uri));
    const char *hosts = rest;
    if (at) {
        const char *colon = memchr(rest, ':', (size_t) (at - rest));
        PUT_(rest, colon ? (size_t) (colon - rest) : (size_t) (at - rest));
        if (colon)
            PUT_(":(secret)", strlen(":(secret)"));
        PUT_("@", 1);
        hosts = at + 1;
    }
    PUT_(hosts, rest_len - (size_t) (hosts - rest));
    if (query)
        PUT_("?(options)", strlen("?(options)"));
#undef PUT_
}

int mongo_db_name_check(const char *name, char *err, size_t errlen)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n >= MONGO_NAME_MAX) {
        snprintf(err, errlen, "a database name has 1 to %d characters", MONGO_NAME_MAX - 1);
        return -1;
    }
    for (const unsigned char *p = (const unsigned char *) name; *p; p++) {
        if (*p <= 0x20 || *p == 0x7f || strchr("/\\.\"$", *p)) {
            snprintf(err, errlen, "a database name may not hold spaces, control bytes or any of / \\ . \" $");
            return -1;
        }
    }
    return 0;
}

int mongo_node_id_check(const char *id, char *err, size_t errlen)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n >= MONGO_NAME_MAX) {
        snprintf(err, errlen, "a node id has 1 to %d characters", MONGO_NAME_MAX - 1);
        return -1;
    }
    for (const unsigned char *p = (const unsigned char *) id; *p; p++) {
        if (*p <= 0x20 || *p >= 0x7f) {
            snprintf(err, errlen, "a node id is printable ASCII without spaces");
            return -1;
        }
    }
    return 0;
}
