/* db_conn: a PostgreSQL connection's health checks (see db_conn.h).
 * Owns nothing. Must never wait: these run on the loop thread. */
#define _GNU_SOURCE /* POLLRDHUP */
#include "db_conn.h"

#include "log.h"

#include <poll.h>
#include <string.h>

int db_result_ok(const PGresult *r)
{
    ExecStatusType s = PQresultStatus(r);
    return r && (s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK);
}

static void on_notice(void *arg, const PGresult *res)
{
    int *ending = arg;
    const char *severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    if (severity && (!strcmp(severity, "FATAL") || !strcmp(severity, "PANIC")))
        *ending = 1;
    else
        log_debug("database notice: %s", PQresultErrorMessage(res));
}

void db_conn_watch(PGconn *conn, int *ending)
{
    *ending = 0;
    PQsetNoticeReceiver(conn, on_notice, ending);
}

int db_conn_alive(PGconn *conn, const int *ending)
{
    for (int round = 0; round < 2 && conn && PQstatus(conn) == CONNECTION_OK && !*ending; round++) {
        struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN | POLLRDHUP};
        if (poll(&pfd, 1, 0) < 0)
            return 0;
        if (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))
            return 0;
        if (!(pfd.revents & POLLIN))
            return 1;
        /* Something arrived while idle (the FATAL notice, or a plain one):
         * read it, then look again for the close that follows it. */
        if (!PQconsumeInput(conn))
            return 0;
        PGresult *r;
        while (!PQisBusy(conn) && (r = PQgetResult(conn)) != NULL)
            PQclear(r);
    }
    return conn && PQstatus(conn) == CONNECTION_OK && !*ending;
}
