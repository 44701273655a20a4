/* support_pipeline.h — shared by the pipeline unit tests: a journal and a pipeline on it. */
#ifndef KASA_TESTS_SUPPORT_PIPELINE_H
#define KASA_TESTS_SUPPORT_PIPELINE_H

#include <stddef.h>

#include "actors/pipeline.h"
#include "journal/journal.h"

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
