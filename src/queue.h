/*
 * queue: the engine's small containers.  struct u32q is a FIFO ring of
 * item indexes (queue_push, queue_pop: the caller checks n first); struct
 * heap is a min-heap of (time, item) entries, retry due times
 * (queue_heap_push; queue_heap_pop of a non-empty heap).  Entries are not
 * removed when an item changes: the reader checks that an entry still
 * holds (the item's state and time) and drops stale ones.
 */
#ifndef RUNNER_QUEUE_H
#define RUNNER_QUEUE_H

#include <stddef.h>
#include <stdint.h>

struct u32q {			/* FIFO ring of item indexes */
	uint32_t *v;
	size_t cap, head, n;
};

struct due {
	int64_t at;
	uint32_t idx;
};

struct heap {			/* min-heap of retry due times */
	struct due *v;
	size_t n, cap;
};

void queue_push(struct u32q *q, uint32_t x);
uint32_t queue_pop(struct u32q *q);
void queue_heap_push(struct heap *h, int64_t at, uint32_t idx);
struct due queue_heap_pop(struct heap *h);

#endif
