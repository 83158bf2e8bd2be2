// Bounded concurrency for workflow code: a workflow task that schedules thousands of activities
// at once is slow to process and, on a busy machine, can time out and be retried from scratch.

/** `fn` over `items` with at most `limit` calls in flight; results in item order. */
export async function mapWithLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  async function lane(): Promise<void> {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index], index);
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, lane));
  return results;
}
