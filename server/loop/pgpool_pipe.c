/* pgpool_pipe: a pool connection in libpq's pipeline mode (see
 * pgpool_int.h; docs/internals/PIPELINE.md says why it works this way).
 *
 * Owns: nothing but the ring of queries in flight on a pipelined slot
 * (entries borrowed from their callers) and the head query's result until
 * it is handed out. Every query is followed by its own Sync, so it commits,
 * or fails, alone. Must never: send a long query (a brew) here, send a
 * query again after its connection was lost (it may have committed), or
 * call PQgetResult with nothing in flight (it returns NULL at once). */
#include "pgpool_int.h"

#include "check.h"
#include "log.h"

#include <stddef.h>

static const char *const pipe_read_names[] = {"results", "sync"};

/* The one way what s reads next changes. */
static void pipe_set_read(struct pgslot *s, enum pipe_read next)
{
    if (s->pipe.read != next)
        log_debug("db slot %d pipeline: reading %s -> %s", s->index, pipe_read_names[s->pipe.read],
                  pipe_read_names[next]);
    s->pipe.read = next;
}

/* The oldest query's entry, taken off the ring (NULL if it was abandoned). */
static struct pgq *pipe_pop(struct pgslot *s)
{
    struct pgq *q = s->pipe.ring[s->pipe.head];
    s->pipe.ring[s->pipe.head] = NULL;
    s->pipe.head = (s->pipe.head + 1) % PIPE_DEPTH;
    s->pipe.n--;
    return q;
}

int pipe_take_all(struct pgslot *s, struct pgq **out)
{
    int n = 0;
    while (s->pipe.n > 0) {
        struct pgq *q = pipe_pop(s);
        if (q) {
            q->slot = NULL;
            out[n++] = q;
        }
    }
    pipe_set_read(s, PIPE_READ_RESULTS);
    return n;
}

/* The oldest query of pipelined s has all its results and its Sync's: hand
 * them to its caller, or drop them if it was abandoned. */
static void pipe_complete_head(struct pgslot *s)
{
    struct pgq *q = pipe_pop(s);
    pipe_set_read(s, PIPE_READ_RESULTS);
    PGresult *res = s->res;
    s->res = NULL;
    if (!q) {
        PQclear(res); /* abandoned while in flight */
    } else {
        /* An error, or PGRES_PIPELINE_ABORTED (which cannot happen with a
         * Sync after every query: an error aborts only up to its Sync),
         * fails q alone. */
        q->slot = NULL;
        slot_hand_out(s, q, res);
    }
    pool_kick(s->pool); /* room for a waiting query */
}

/* Each query's results come in send order as: its result(s), NULL, then
 * PGRES_PIPELINE_SYNC for its Sync. */
void pipe_read(struct pgslot *s)
{
    if (slot_consume(s) != 0)
        return;
    while (s->pipe.n > 0 && PQstatus(s->conn) == CONNECTION_OK && !PQisBusy(s->conn)) {
        PGresult *r = PQgetResult(s->conn);
        if (s->pipe.read == PIPE_READ_RESULTS) {
            if (!r)
                pipe_set_read(s, PIPE_READ_SYNC);
            else
                slot_keep_result(s, r);
            continue;
        }
        if (!r)
            break; /* the Sync's result has not arrived yet */
        int sync = PQresultStatus(r) == PGRES_PIPELINE_SYNC;
        PQclear(r);
        if (!sync) {
            slot_lost(s, "unexpected result in the pipeline");
            return;
        }
        pipe_complete_head(s);
    }
    if (PQstatus(s->conn) != CONNECTION_OK)
        slot_lost(s, "closed by the server");
}

/* Sends q followed by its own Sync, so that it commits, or fails, alone.
 * libpq 15's PQpipelineSync also flushes: one write per query (libpq 17's
 * PQsendPipelineSync would let one write carry many). The run bound counts
 * from the send: it includes the wait behind the queries ahead of q on the
 * connection (at most PIPE_DEPTH - 1 short ones). */
void pipe_run(struct pgslot *s, struct pgq *q)
{
    CHECK(s->state == SLOT_PIPELINE && s->pipe.n < PIPE_DEPTH);
    pool_set_place(q, PGQ_RUNNING);
    q->slot = s;
    s->pipe.ring[(s->pipe.head + s->pipe.n) % PIPE_DEPTH] = q;
    s->pipe.n++;
    const struct db_stmt *st = q->stmt;
    int ok = st->name ? PQsendQueryPrepared(s->conn, st->name, st->nparams, st->values, NULL, NULL, 0)
                      : PQsendQueryParams(s->conn, st->sql, st->nparams, NULL, st->values, NULL, NULL, 0);
    if (!ok || !PQpipelineSync(s->conn)) {
        slot_lost(s, PQerrorMessage(s->conn)); /* q with the others */
        return;
    }
    slot_flush(s);
}

void pipe_abandon(struct pgslot *s, struct pgq *q)
{
    for (int i = 0; i < s->pipe.n; i++) {
        int at = (s->pipe.head + i) % PIPE_DEPTH;
        if (s->pipe.ring[at] == q)
            s->pipe.ring[at] = NULL;
    }
    q->slot = NULL;
}
