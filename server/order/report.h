/* report: the JSON timeline of an order (jansson). */
#ifndef COFFEE_REPORT_H
#define COFFEE_REPORT_H

#include <jansson.h>

struct order;

/* Returns a new reference: the order as /make-coffee answers it, or NULL
 * when out of memory. */
json_t *report_order(const struct order *o);
/* Returns a new reference: the "steps" array alone (stored as jsonb). */
json_t *report_steps(const struct order *o);
/* Returns the order's answer (report_order) as text, borrowed from o: built
 * on the first call and kept in o->report until the order changes (every
 * order_* recording function forgets it) or is freed. NULL when out of
 * memory. The finish statement stores its "steps" and /make-coffee
 * answers it: one build and one dump per order instead of two of each. */
const char *report_order_text(struct order *o);
/* Returns a new reference, or NULL when out of memory: /compare's answer
 * for orders[0..n) (n >= 1, each of another mode), each under its mode's
 * name, and the speedup of the last over the first (null unless every
 * order is done); *bad is the first order that failed (NULL when none),
 * whose error the answer says. */
json_t *report_compare(const struct order *const orders[], int n, const struct order **bad);
/* Returns new text (free() it): j compact, reals to 12 significant digits. */
char *report_dumps(const json_t *j);
/* Milliseconds rounded to the microsecond, as every report shows them. */
double report_ms(long long ns);

#endif
