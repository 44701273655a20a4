/* registry.h — every deposit kasa knows, in memory, and the one gate through which a deposit's
 * record becomes durable.
 *
 * The registry holds, per Cobo transaction id, the deposit's latest state and fields (a
 * deposit_view_t), its credit attempts, whether a notice failed, and the LSN of its last record;
 * and the address → MT5 login links. It is rebuilt from the journal by replay (registry_replay:
 * every record applied in LSN order) and kept current by registry_commit / registry_append, which
 * apply a record to memory and submit it to the journal under one lock, then wait for durability
 * outside it. Submitting under the lock makes LSN order equal the order in which transitions were
 * decided, so a replay always rebuilds exactly the state memory had (two transitions of one deposit
 * can never reach the journal in the opposite order).
 *
 * Memory runs ahead of the disk only between a submit and its durability. Anyone who meets a
 * deposit in that window and wants to answer on its strength (a duplicate webhook) waits for the
 * deposit's last LSN first (registry_commit does this). If the journal fails, the registry is
 * "failed": every later commit, append or link is refused, so nothing more is acknowledged.
 *
 * Finished deposits leave memory. Given its journal directory (registry_set_dir), a registry saved
 * into a snapshot writes every finished deposit (NOTIFIED, REJECTED: deposit_state_is_final) to the
 * index of finished deposits (journal/findex.h: its full entry in a store on disk, its transaction
 * id's hash, login and arrival in sorted arrays) instead of into the snapshot, and a registry
 * loaded from that snapshot holds in memory only the unfinished ones plus the mapped index. A running
 * registry lets go of the deposits each new snapshot indexed (registry_forget_finished). A deposit
 * not in memory is looked up in the index (the whole id compared, never the hash alone): a repeated
 * webhook is answered from it (nothing journaled, nothing moves), registry_get and a login's listing
 * read it back from disk, and anything to be recorded for it brings it back into memory first.
 *
 * Bounded: at most max_deposits unfinished deposits and as many links; beyond that new ones are
 * refused (REGISTRY_FULL → the webhook gets 503) rather than memory growing without bound. Finished
 * deposits are not counted: they leave memory at the next snapshot (with snapshots off they stay).
 * Thread-safe: every function may be called from any thread. */
#ifndef KASA_ACTORS_REGISTRY_H
#define KASA_ACTORS_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "actors/pipeline.h"
#include "journal/journal.h"
#include "schema/config.h"
#include "schema/desk.h"
#include "schema/record.h"

typedef struct registry_t registry_t;

/* What a restart does with a deposit in its state (see registry_resume_action). */
typedef enum {
    REGISTRY_RESUME_NONE,      /* finished (NOTIFIED, REJECTED, or CREDITED with a failed notice) */
    REGISTRY_RESUME_WAIT,      /* PENDING: waits for Cobo's next webhook                          */
    REGISTRY_RESUME_LOCK,      /* RECEIVED: to the locker                                         */
    REGISTRY_RESUME_CREDIT,    /* LOCKED, no attempt yet: to a crediter                           */
    REGISTRY_RESUME_RECONCILE, /* LOCKED with an attempt: reconcile against MT5, then credit      */
    REGISTRY_RESUME_NOTIFY,    /* CREDITED without a notice record: to the notifier               */
    REGISTRY_RESUME_PERSON,    /* HELD: needs a person                                            */
} registry_resume_t;

#define REGISTRY_MAX_LOGINS 8   /* distinct MT5 logins one deposit's credit attempts may go to */

/* An MT5 login a credit attempt went to: every one is searched before any send. */
typedef struct {
    uint64_t login;
    int64_t credit_minor;       /* what the last attempt on it was for, in its minor units */
    int32_t digits;
    int64_t first_ms, last_ms;  /* the first and the last attempt on it (kasa's clock) */
} registry_tried_t;

/* A deposit's full in-memory entry (a copy, for the stages and tools). */
typedef struct {
    deposit_view_t view;
    uint32_t attempts;          /* credit attempts journaled (the highest attempt number)  */
    char ref[32];               /* the reference of the last attempt                        */
    int64_t first_attempt_ms;   /* time of the first attempt (0 if none)                    */
    int64_t last_attempt_ms;    /* time of the last attempt (0 if none)                     */
    uint64_t attempt_login;     /* the login the last attempt was for (0 if none)           */
    registry_tried_t tried[REGISTRY_MAX_LOGINS]; /* every login an attempt went to, in order */
    uint32_t tried_count;
    int tried_overflow;         /* an attempt went to one more login than tried[] holds     */
    char remainder[48];         /* LOCKED: what rounding dropped                            */
    int notice_failed;          /* a RECORD_NOTICE_FAILED was journaled                     */
    uint32_t alerts_raised;     /* bit i: an ALERT named record_alert_name(i) was journaled */
    uint32_t history_gaps;      /* RECORD_HISTORY_GAPs: a repair lost records it may have had;
                                 * then attempts >= 1 and the attempt window spans up to the
                                 * repair, so it is treated as having an attempt of unknown outcome */
    int64_t history_gap_ms;     /* time of the last such marker (0 if none)                 */
    uint32_t approvals;         /* distinct admins who approved it (ADMIN_ACTION "approve") */
    char approvers[DESK_MAX_APPROVERS][64]; /* their names, in order                      */
    uint64_t last_lsn;          /* LSN of its last record (maybe not yet durable)           */
} registry_entry_t;

typedef enum {
    REGISTRY_MOVED,   /* a record was journaled and is durable                              */
    REGISTRY_SAME,    /* nothing to journal (repeat, or no change); what is known is durable */
    REGISTRY_ILLEGAL, /* the state machine does not allow it from the current state          */
    REGISTRY_FULL,    /* a new deposit beyond max_deposits: refused                         */
    REGISTRY_FAILED,  /* the journal failed (now or earlier): nothing acknowledged           */
} registry_result_t;

/* A registry for at most max_deposits unfinished deposits (and as many address links). NULL on no
 * memory. It keeps every deposit in memory until registry_set_dir names its journal directory. */
registry_t *registry_new(size_t max_deposits);
/* The journal directory whose finished/ holds the index of finished deposits: registry_save writes
 * finished deposits there, registry_load reads them from there. Call before either. */
void registry_set_dir(registry_t *self, const char *dir);
/* Marks a snapshot writer's own copy of the registry: its letting go of finished deposits logs no
 * registry.finished_forgotten (that line speaks of the running kasa's registry). */
void registry_set_quiet(registry_t *self);
/* Frees; sets *self_p to NULL. Safe on NULL and twice. */
void registry_destroy(registry_t **self_p);

/* Applies one durable record as replay does (RECORD_DEPOSIT sets the state it records, whatever
 * the current one — a mismatch is logged as event=replay.mismatch; CREDIT_ATTEMPT counts the
 * attempt; ADDRESS_LINK links; NOTICE_FAILED marks the notice; ALERT counts the alert; HISTORY_GAP
 * counts as an attempt of unknown outcome made between the deposit's first record and the repair;
 * an ADMIN_ACTION "approve" counts its admin among the deposit's approvers; other ADMIN_ACTIONs
 * change nothing).
 * Returns 0, or -1 if the registry is full. */
int registry_apply(registry_t *self, const record_t *r, uint64_t lsn);

/* Reads the journal in dir from its first record and applies every record in LSN order.
 * Read-only (works on an open or a closed journal). Returns the number of records applied, or -1
 * with a reason in err (bad record, undecodable payload, registry full). */
long registry_replay(registry_t *self, const char *dir, char *err, size_t errlen);

/* Once the snapshot of the registry's directory covering snapshot_lsn is durable: stands on that
 * snapshot's index of finished deposits and drops from memory every deposit it holds as it is now
 * (finished, nothing recorded since). 0, or -1 with a reason (then nothing changed). */
int registry_forget_finished(registry_t *self, uint64_t snapshot_lsn, char *err, size_t errlen);

/* Has registry_replay hand every record it reads to fn too, after applying it (the withdrawals,
 * actors/withdrawals.h, rebuild from the same pass); fn returns 0, or -1 to stop the replay (full). */
void registry_replay_also(registry_t *self, int (*fn)(void *arg, const record_t *r, uint64_t lsn), void *arg);

/* The registry's snapshot section (journal/snapshot.h): registry_save encodes every unfinished
 * deposit (in arrival order) and every link into p, and (with a directory set) writes the finished
 * ones to the index of finished deposits for its applied LSN (the snapshot's), which the section
 * names; without a directory every deposit goes into p. registry_load decodes them into an empty
 * registry and maps the index named, after which it answers as it did when saved (gets, listings,
 * last LSNs and all). 0, or -1 (load: with a reason; the registry must then be thrown away). */
#include "journal/snapshot.h"
int registry_save(registry_t *self, snap_pk_t *p);
int registry_load(registry_t *self, snap_pk_t *p, char *err, size_t errlen);
/* Layouts: registry_save writes the newest; registry_load reads it and the older ones back to 2 (a
 * layout-2 section carries no running totals: they are rebuilt once, at load, from every deposit in
 * memory and in the index, each credit counted on its last credit attempt's UTC day). A section of
 * a layout it does not read does not load. registry_save_layout writes the section as an older layout
 * registry_load reads (what kasa of that layout wrote), or -1 for one it does not. */
int registry_save_layout(registry_t *self, snap_pk_t *p, uint32_t layout);
/* One entry's fields, in the order both directions use (save: appended; load: read back into e). */
void registry_entry_pickle(snap_pk_t *p, registry_entry_t *e);

/* The deposit transition r describes (r->kind RECORD_DEPOSIT, r->tx_id, r->event and the fields the
 * event brings; r->from and r->to are set here). Under the lock: deposit_step() from the current
 * state decides. On MOVE the record is completed from the entry (fields the event does not bring
 * are kept), encoded, submitted to journal and applied to memory; then, outside the lock, waited
 * for. A PENDING→PENDING move is journaled only when the confirmations rise (else SAME). On SAME or
 * ILLEGAL the deposit's last LSN is waited for before answering. On MOVE *effects gets the step's
 * effects and, if bytes is not NULL, *bytes and *len the encoded record (caller frees), and one log line
 * event=deposit.<state> is written. On SAME/ILLEGAL *effects gets the step's effects too (an ALERT
 * may ride on SAME). The result says what happened; err says why for FULL/FAILED/ILLEGAL. */
registry_result_t registry_commit(registry_t *self, journal_t *journal, record_t *r, unsigned *effects,
                                  uint8_t **bytes, size_t *len, char *err, size_t errlen);

/* registry_commit in two halves, for a caller that waits for durability without a sleeping thread
 * (journal_when_durable). registry_commit_begin does everything but the wait: *wait_lsn gets the
 * LSN to wait for before the result may be acted on or answered (0: none, the result stands now; on
 * MOVE, *bytes is set only once the record is submitted). Then, once journal_when_durable (or
 * journal_wait) said durable_rc for it, registry_commit_end(res, lsn, durable_rc) gives the final
 * result: FAILED (and the registry failed, *bytes freed) when durable_rc is not 0; on MOVE it
 * writes the event=deposit.<state> line. Nothing may act on a result before registry_commit_end. */
registry_result_t registry_commit_begin(registry_t *self, journal_t *journal, record_t *r, unsigned *effects,
                                        uint8_t **bytes, size_t *len, uint64_t *wait_lsn, char *err, size_t errlen);
registry_result_t registry_commit_end(registry_t *self, const record_t *r, registry_result_t res, uint64_t lsn,
                                      int durable_rc, uint8_t **bytes, char *err, size_t errlen);

/* Journals a record that is not a state transition (CREDIT_ATTEMPT, NOTICE_FAILED, ADMIN_ACTION)
 * for an existing deposit, applying it to memory under the lock, and waits for durability.
 * REGISTRY_MOVED once durable, REGISTRY_ILLEGAL if the deposit is unknown, REGISTRY_FAILED. */
registry_result_t registry_append(registry_t *self, journal_t *journal, record_t *r, char *err, size_t errlen);

/* Raises an alert on a deposit: journals RECORD_ALERT (r->kind RECORD_ALERT, r->tx_id, r->alert and
 * what it knows: login, ticket, ticket2, credit_minor/digits, reason) and waits for durability, then
 * logs it (level=error event=deposit.alert). An alert of a known name already raised for the deposit
 * is not journaled again (REGISTRY_SAME): a repeated webhook or a retried check raises it once.
 * REGISTRY_MOVED once durable, REGISTRY_ILLEGAL for an unknown deposit, REGISTRY_FAILED. */
registry_result_t registry_alert(registry_t *self, journal_t *journal, record_t *r, char *err, size_t errlen);

/* An operator's action on a deposit (schema/desk.h), decided and journaled under one lock hold, so
 * two operators acting at once cannot both pass a check that only one action may pass:
 * desk_step() judges it from the deposit's state and approvals (the approvals its amount needs come
 * from cfg's limits). Refused → REGISTRY_ILLEGAL with the reason in err and nothing journaled.
 * Noted (an approval that is not the last one needed) → the RECORD_ADMIN_ACTION alone is journaled,
 * REGISTRY_SAME once durable. Moved → the RECORD_ADMIN_ACTION and then the deposit transition (actor,
 * origin and "action: reason" in it) are journaled, REGISTRY_MOVED once both are durable, with
 * *effects, *bytes and *len as registry_commit. login is the assign target (0 for other actions);
 * reason is required. REGISTRY_FAILED if the journal failed. Checks needing I/O (does MT5 know the
 * login?) are the caller's, before this. */

registry_result_t registry_desk(registry_t *self, journal_t *journal, const config_t *cfg, const desk_request_t *req,
                                unsigned *effects, uint8_t **bytes, size_t *len, char *err, size_t errlen);

/* Links address (on chain_id) to login: journals RECORD_ADDRESS_LINK (actor recorded) and waits.
 * 0 once durable or if already linked to that login; -1 with a reason if linked to another login,
 * the registry is full, or the journal failed (the link is then forgotten again). */
int registry_link(registry_t *self, journal_t *journal, const char *address, const char *chain_id,
                  uint64_t login, const char *actor, char *err, size_t errlen);

/* registry_link of a link another node made, learned from MongoDB in cluster mode: journaled by
 * actor "kasa:cluster" with origin "node:<node>" (the node that made it). Same results. */
int registry_link_learned(registry_t *self, journal_t *journal, const char *address, const char *chain_id,
                          uint64_t login, const char *node, char *err, size_t errlen);
/* The login linked to address, or 0. */
uint64_t registry_address_login(registry_t *self, const char *address);

/* Whose address a transaction's sender is, for cobo_tx_kind (schema/cobo_tx.h): COBO_OWN_DEPOSIT a
 * deposit address linked here (a sweep), COBO_OWN_BROKER one of the broker's own (cfg:
 * KASA_OWN_ADDRESSES, COBO_WITHDRAW_ADDRESS; cfg NULL: none), 0 neither. What kasa serve and kasa
 * reconcile both ask, so they agree on what is a deposit. */
int registry_address_owner(registry_t *self, const config_t *cfg, const char *address);

/* One address link, as registry_links() copies it. */
typedef struct {
    char address[128];
    char chain_id[24];
    uint64_t login;
    uint64_t lsn;          /* the ADDRESS_LINK record */
    int64_t time_ms;       /* when it was written (Unix ms) */
} registry_link_t;

/* The links of login (0: any) whose address contains q, or whose login is q when q is all digits
 * (q NULL or "": any), newest first; the ones at [skip, skip + limit) are copied to out (room for
 * limit). Returns how many match, or -1 without memory. */
int registry_links(registry_t *self, uint64_t login, const char *q, int skip, int limit, registry_link_t *out);

/* Copies tx_id's entry into *out (read back from the index if it left memory); 0, or -1 if unknown. */
int registry_get(registry_t *self, const char *tx_id, registry_entry_t *out);

/* tx_id's entry copied into *out (read back from the index if it left memory) and, if first_lsn is
 * given, the LSN of its first record there: 1; 0 if kasa does not know it; -1 if it cannot tell (an
 * index entry that might be it cannot be read: logged). registry_get is this with "cannot tell"
 * taken for unknown. */
int registry_lookup(registry_t *self, const char *tx_id, registry_entry_t *out, uint64_t *first_lsn);

/* Calls fn for each deposit of login, newest first (by arrival), at most limit (<= 0: no limit),
 * under the lock: those in memory and those read back from the index. Each login has its own list
 * (and range of the index), so one login's listing costs what it visits, not a scan of every
 * deposit. login 0: every deposit in memory (the finished ones that left it are not visited: every
 * unfinished deposit is in memory, so a scan for work to do sees all of it). Returns how many were
 * visited, or -1 if an entry of the index could not be read (logged; the others were visited: the
 * listing is incomplete and must not be taken for the whole). */
int registry_each(registry_t *self, uint64_t login, int limit,
                  void (*fn)(void *arg, const registry_entry_t *e), void *arg);

/* Calls fn for every deposit known, newest first (by arrival): those in memory and every one in the
 * index of finished deposits, read back from disk, under the lock. For offline commands: it reads the
 * whole index (16 bytes of memory per finished deposit while it runs), so a serving kasa never calls
 * it. Returns how many were visited, or -1 if an entry could not be read or no memory (logged; what
 * could be read was visited). */
long registry_each_all(registry_t *self, void (*fn)(void *arg, const registry_entry_t *e), void *arg);

/* The running totals (actors/totals.h) copied into *out: every deposit the registry has applied,
 * finished ones that left memory for the index too (they are carried in its snapshot section). */
#include "actors/totals.h"
void registry_totals(registry_t *self, totals_t *out);

/* How many deposits are known (in memory and in the index), how many unfinished, and how many links. */
size_t registry_count(registry_t *self);
size_t registry_open_count(registry_t *self);
size_t registry_link_count(registry_t *self);

/* 1 once the journal has failed under this registry (then nothing more is accepted). */
int registry_failed(registry_t *self);

/* What a restart does with e, and a short phrase for it ("lock", "reconcile then credit", ...). */
registry_resume_t registry_resume_action(const registry_entry_t *e);
const char *registry_resume_name(registry_resume_t action);

/* Builds the RECORD_DEPOSIT that hands e on to the stage owning its state (from == to == its
 * state, every field from the entry): the message a resumed deposit travels with. */
void registry_entry_record(const registry_entry_t *e, record_t *out);

#endif
