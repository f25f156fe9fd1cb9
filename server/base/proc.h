/* proc: process-wide set-up shared by the programs. */
#ifndef COFFEE_PROC_H
#define COFFEE_PROC_H

/* Raises RLIMIT_NOFILE so that at least want fds can be open (the hard
 * limit too when running as root). Returns the soft limit now in force. */
int proc_raise_nofile(int want);
/* Ignores SIGPIPE process-wide (curl runs with CURLOPT_NOSIGNAL). */
void proc_ignore_sigpipe(void);
/* Prints "<prog> listening on http://<bind>:<port>" on stdout and flushes:
 * scripts and tests wait for this line to learn the port. */
void proc_announce(const char *prog, const char *bind, int port);

#endif
