// Many components asking for one value each (a row's run count, a row's permission) become one
// request per `max` keys: `load` calls made in the same task are collected and sent together
// once the task ends, so a list of 100 rows costs one request instead of 100.

export type BatchFetch<V> = (keys: string[]) => Promise<Map<string, V>>;

export interface Batcher<V> {
  /** The value of `key`; rejects with the batch's error, or when the answer leaves `key` out. */
  load(key: string): Promise<V>;
}

export function batcher<V>(fetch: BatchFetch<V>, max: number): Batcher<V> {
  let pending: Map<string, { resolve: (v: V) => void; reject: (e: unknown) => void }[]> | null = null;
  const flush = (batch: NonNullable<typeof pending>) => {
    const keys = Array.from(batch.keys());
    for (let i = 0; i < keys.length; i += max) {
      const chunk = keys.slice(i, i + max);
      fetch(chunk).then(
        (found) => {
          for (const key of chunk) {
            for (const waiter of batch.get(key)!) {
              if (found.has(key)) waiter.resolve(found.get(key)!);
              else waiter.reject(new Error(`no answer for ${key}`));
            }
          }
        },
        (error) => chunk.forEach((key) => batch.get(key)!.forEach((w) => w.reject(error))),
      );
    }
  };
  return {
    load(key) {
      return new Promise<V>((resolve, reject) => {
        if (!pending) {
          const batch = new Map<string, { resolve: (v: V) => void; reject: (e: unknown) => void }[]>();
          pending = batch;
          setTimeout(() => {
            pending = null;
            flush(batch);
          }, 0);
        }
        const waiters = pending.get(key) ?? [];
        waiters.push({ resolve, reject });
        pending.set(key, waiters);
      });
    },
  };
}
