/**
 * `fn` over every item, at most `limit` at once: each of `limit` runners
 * takes the next item when its last is done. Resolves once every call has
 * (an error rejects at once; the calls under way run on). A wait, not I/O:
 * the I/O is the caller's.
 */
export async function eachAtMost<T>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const runner = async () => {
    for (let i = next++; i < items.length; i = next++) await fn(items[i]!, i);
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, runner));
}
