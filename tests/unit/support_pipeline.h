/* support_pipeline.h — shared by the pipeline unit tests: a journal and a pipeline on it. */
#ifndef KASA_TESTS_SUPPORT_PIPELINE_H
#define KASA_TESTS_SUPPORT_PIPELINE_H

#include <stddef.h>

#include <stdio.h>
#include <string.h>

#include "actors/cobo_auth.h"
#include "actors/pipeline.h"
#include "journal/journal.h"

/* A configuration for a pipeline journaling into dir that reaches nothing: Cobo, MT5 and Telegram
 * on a closed port (their stages retry in the background), the Cobo API key of api_seed (64 hex),
 * Cobo's webhook key webhook_pubkey (64 hex), one crediter, bodies up to max_body. */
static inline void support_pipeline_offline(config_t *cfg, const char *dir, const char *api_seed,
                                            const char *webhook_pubkey, size_t max_body)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->journal_dir, sizeof cfg->journal_dir, "%s", dir);
    snprintf(cfg->cobo_api_url, sizeof cfg->cobo_api_url, "http://127.0.0.1:9/v2");
    snprintf(cfg->cobo_api_secret, sizeof cfg->cobo_api_secret, "%s", api_seed);
    cobo_pubkey_from_seed(api_seed, cfg->cobo_api_key);
    snprintf(cfg->cobo_webhook_pubkey, sizeof cfg->cobo_webhook_pubkey, "%s", webhook_pubkey);
    snprintf(cfg->mt5_url, sizeof cfg->mt5_url, "http://127.0.0.1:9");
    cfg->mt5_login = 1000;
    snprintf(cfg->mt5_password, sizeof cfg->mt5_password, "x");
    snprintf(cfg->telegram_api_url, sizeof cfg->telegram_api_url, "http://127.0.0.1:9");
    cfg->crediters = 1;
    cfg->max_body = max_body;
}

/* Opens the journal at DIR into *J and a pipeline on it with CFG. Returns the pipeline, or NULL
 * with ERR filled and *J destroyed (NULL) when either fails. */
static inline pipeline_t *support_pipeline_open(const char *dir, const config_t *cfg, journal_t **j, char *err,
                                                size_t errlen)
{
    *j = journal_open(dir, NULL, err, errlen);
    pipeline_t *p = *j ? pipeline_new(*j, cfg, err, errlen) : NULL;
    if (!p)
        journal_destroy(j);
    return p;
}

#endif
