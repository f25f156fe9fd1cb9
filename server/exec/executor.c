/* executor: the registry of executors and the row budget they share (see
 * executor.h). Pure data and one pure function: no I/O, no state. */
#include "executor.h"

const struct executor_ops *const exec_executors[EXEC_KINDS] = {
    [EXEC_BLOCKING] = &exec_blocking_ops,
    [EXEC_ASYNC] = &exec_async_ops,
    [EXEC_THREADS] = &exec_threads_ops,
};

double executor_row_budget_ms(const struct executor_limits *lim)
{
    double most = 0;
    for (int k = 0; k < EXEC_KINDS; k++) {
        double ms = exec_executors[k]->row_budget_ms(lim);
        if (ms > most)
            most = ms;
    }
    return most;
}
