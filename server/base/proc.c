/* proc: rlimits, signals and the start-up announcement (see proc.h). */
#include "proc.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

int proc_raise_nofile(int want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1024;
    rlim_t target = (rlim_t)want;
    if (rl.rlim_max < target) {
        struct rlimit raised = {target, target};
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
            return want;
    }
    rl.rlim_cur = rl.rlim_max < target ? rl.rlim_max : target;
    if (rl.rlim_cur < target && rl.rlim_cur == RLIM_INFINITY)
        rl.rlim_cur = target;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    return rl.rlim_cur > 1u << 30 ? 1 << 30 : (int)rl.rlim_cur;
}

void proc_ignore_sigpipe(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}

void proc_announce(const char *prog, const char *bind, int port)
{
    if (strchr(bind, ':'))
        printf("%s listening on http://[%s]:%d\n", prog, bind, port);
    else
        printf("%s listening on http://%s:%d\n", prog, bind, port);
    fflush(stdout);
}
