/* check: run-time preconditions, as libuv asserts its own.
 *
 * CHECK(cond) states what a caller must have made true: a call on the loop
 * thread, a legal state change. A CHECK that fails is a programmer error
 * in this process, never bad input, a slow peer or a failed dependency
 * (those are errors returned and answered); it logs where and what, and
 * aborts. Nothing a request carries may ever reach a CHECK.
 *
 * On in every build, release included (each is an integer compare or a
 * pthread_equal); -DCOFFEE_CHECKS=OFF compiles them out. Unlike assert(),
 * NDEBUG (CMake's Release and RelWithDebInfo) does not remove them. */
#ifndef COFFEE_CHECK_H
#define COFFEE_CHECK_H

#ifndef COFFEE_CHECKS
#define COFFEE_CHECKS 1
#endif

#if COFFEE_CHECKS
#define CHECK(cond) ((cond) ? (void)0 : check_failed(#cond, __FILE__, __LINE__, __func__))
#else
#define CHECK(cond) ((void)sizeof(cond))
#endif

/* Logs "check failed: what (file:line, func)" and aborts. */
_Noreturn void check_failed(const char *what, const char *file, int line, const char *func);

#endif
