/* executor: the registry of executors (see executor.h). Pure data: no
 * I/O, no state. */
#include "executor.h"

const struct executor_ops *const exec_executors[EXEC_KINDS] = {
    [EXEC_BLOCKING] = &exec_blocking_ops,
    [EXEC_ASYNC] = &exec_async_ops,
    [EXEC_THREADS] = &exec_threads_ops,
};
