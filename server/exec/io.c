/* io: failing a request on a later pass, for the implementations of the
 * I/O services (see io.h). Owns nothing: the requests are their callers'. */
#include "io.h"

static void run_failed(struct evloop *loop, struct ev_task *task)
{
    (void)loop;
    struct io_later *l = container_of(task, struct io_later, task);
    l->deferred = 0;
    struct list_node *n;
    /* A done may start (and fail) another request: it joins the list and
     * runs on this walk, still never inside the call that started it. */
    while ((n = list_first(&l->failed)) != NULL) {
        struct io_req *r = container_of(n, struct io_req, link);
        list_remove(n);
        r->failing = 0;
        struct io_result res = {.error = r->fail_error, .msg = r->fail_msg};
        r->done(r, &res);
    }
}

void io_later_init(struct io_later *l, struct evloop *loop)
{
    l->loop = loop;
    list_init(&l->failed);
    l->task = (struct ev_task){.fn = run_failed};
    l->deferred = 0;
}

void io_later_fail(struct io_later *l, struct io_req *r, int error, const char *msg)
{
    r->impl = NULL;
    r->failing = 1;
    r->fail_error = error;
    r->fail_msg = msg;
    list_push_back(&l->failed, &r->link);
    if (!l->deferred) {
        l->deferred = 1;
        evloop_defer(l->loop, &l->task);
    }
}

int io_later_cancel(struct io_req *r)
{
    if (!r->failing)
        return 0;
    list_remove(&r->link);
    r->failing = 0;
    return 1;
}
