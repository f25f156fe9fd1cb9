/* list: an intrusive, circular, doubly-linked list (as in the Linux
 * kernel): the node lives inside the listed struct, so linking allocates
 * nothing and unlinking is O(1). Also container_of. */
#ifndef COFFEE_LIST_H
#define COFFEE_LIST_H

#include <stddef.h>

/* The struct that holds member ptr (a pointer to its field `member`). */
#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

struct list_node {
    struct list_node *prev, *next;
};

/* An empty list, or a node that is on no list, points at itself. */
static inline void list_init(struct list_node *n)
{
    n->prev = n->next = n;
}
static inline int list_empty(const struct list_node *head)
{
    return head->next == head;
}

static inline void list_push_back(struct list_node *head, struct list_node *n)
{
    n->prev = head->prev;
    n->next = head;
    head->prev->next = n;
    head->prev = n;
}

/* Unlinks n (safe to call again: n then points at itself). */
static inline void list_remove(struct list_node *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    list_init(n);
}

/* The first node, or NULL when empty. */
static inline struct list_node *list_first(const struct list_node *head)
{
    return list_empty(head) ? NULL : head->next;
}

#endif
