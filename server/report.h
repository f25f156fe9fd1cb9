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
/* Returns new text (free() it): j compact, reals to 12 significant digits. */
char *report_dumps(const json_t *j);
/* Milliseconds rounded to the microsecond, as every report shows them. */
double report_ms(long long ns);

#endif
