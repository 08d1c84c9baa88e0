#include "queue.h"
#include "util.h"

#include <stdlib.h>

void queue_push(struct u32q *q, uint32_t x)
{
	if (q->n == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 16;
		uint32_t *v = xmalloc(cap * sizeof(*v));
		for (size_t i = 0; i < q->n; i++)
			v[i] = q->v[(q->head + i) % q->cap];
		free(q->v);
		q->v = v;
		q->cap = cap;
		q->head = 0;
	}
	q->v[(q->head + q->n++) % q->cap] = x;
}

uint32_t queue_pop(struct u32q *q)
{
	uint32_t x = q->v[q->head];
	q->head = (q->head + 1) % q->cap;
	q->n--;
	return x;
}

void queue_heap_push(struct heap *h, int64_t at, uint32_t idx)
{
	GROW(h->v, h->cap, h->n + 1);
	size_t i = h->n++;
	while (i && h->v[(i - 1) / 2].at > at) {
		h->v[i] = h->v[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h->v[i] = (struct due){ at, idx };
}

struct due queue_heap_pop(struct heap *h)
{
	struct due top = h->v[0], last = h->v[--h->n];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && h->v[c + 1].at < h->v[c].at)
			c++;
		if (last.at <= h->v[c].at)
			break;
		h->v[i] = h->v[c];
		i = c;
	}
	if (h->n)
		h->v[i] = last;
	return top;
}
