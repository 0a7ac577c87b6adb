/**
 * `make` run once, on first use, and its promise kept: what a warm Lambda
 * instance reuses (clients, keys: configuration, never state the next
 * invocation relies on). A failure is not kept: the next call tries again.
 */
export function once<T>(make: () => Promise<T>): () => Promise<T> {
  let made: Promise<T> | undefined;
  return () =>
    (made ??= make().catch((e: unknown) => {
      made = undefined;
      throw e;
    }));
}
