/*
 * Unit tests for queue.c: the FIFO ring keeps its order across growth and
 * wrap-around; the heap gives due times in order, ties included.
 */
#include "tap.h"
#include "queue.h"

#include <stdlib.h>

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

int main(void)
{
	/* FIFO: push and pop interleaved so the ring wraps, then grows. */
	struct u32q q = { 0 };
	uint32_t next_in = 0, next_out = 0;
	int order_ok = 1;
	for (int round = 0; round < 50; round++) {
		for (int i = 0; i < 7 + round; i++)
			queue_push(&q, next_in++);
		for (int i = 0; i < 5 + round / 2 && q.n; i++)
			order_ok &= queue_pop(&q) == next_out++;
	}
	while (q.n)
		order_ok &= queue_pop(&q) == next_out++;
	ok(order_ok, "FIFO order kept through wrap-around and growth");
	is_int(next_out, next_in, "every index pushed came out once");
	free(q.v);

	/* Heap: random due times (many equal) come out sorted. */
	struct heap h = { 0 };
	enum { N = 5000 };
	static int64_t want[N];
	srand(7);
	for (int i = 0; i < N; i++) {
		want[i] = rand() % 500;
		queue_heap_push(&h, want[i], (uint32_t)i);
	}
	qsort(want, N, sizeof(want[0]), cmp_i64);
	int sorted = 1, idx_ok = 1;
	for (int i = 0; i < N; i++) {
		struct due d = queue_heap_pop(&h);
		sorted &= d.at == want[i];
		idx_ok &= d.idx < N;
	}
	ok(sorted, "the heap gives %d due times in order", N);
	ok(idx_ok, "each entry keeps its item");
	is_int((long long)h.n, 0, "and is empty after");

	/* Interleaved: a time pushed below the top comes out first. */
	queue_heap_push(&h, 100, 1);
	queue_heap_push(&h, 50, 2);
	struct due d = queue_heap_pop(&h);
	is_int(d.idx, 2, "the earlier due time first");
	queue_heap_push(&h, 10, 3);
	d = queue_heap_pop(&h);
	is_int(d.idx, 3, "a time pushed after a pop is still ordered");
	d = queue_heap_pop(&h);
	is_int(d.idx, 1, "then the last");
	free(h.v);
	done_testing();
	return exit_status();
}
