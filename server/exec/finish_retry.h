/* finish_retry: when an order's finish (its row's UPDATE) goes out once
 * more, one policy for both executors. The UPDATE sets the same values
 * whenever it runs, so sending it again is safe; it goes out again only
 * when the connection it went out on was lost (a restart, a terminated
 * backend), so that no row is left running because of that connection:
 * not after a timeout or the statement's own error, not more than once,
 * and not once the server stops without waiting. */
#ifndef COFFEE_FINISH_RETRY_H
#define COFFEE_FINISH_RETRY_H

/* Sends of one finish at most: the first and one more. */
#define FINISH_SENDS_MAX 2

/* Whether a finish sent `sent` times, the last one lost with its
 * connection (lost), goes out again; stopping: the server waits no more. */
static inline int finish_send_again(int lost, int sent, int stopping)
{
    return lost && sent < FINISH_SENDS_MAX && !stopping;
}

#endif
