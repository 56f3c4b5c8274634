/**
 * `create`, run on the first call and shared by every later one (a client, a queue created once); a failure
 * is forgotten, so the next call tries again instead of failing forever.
 */
export function sharedUntilFailure<T>(create: () => Promise<T>): () => Promise<T> {
  let shared: Promise<T> | undefined;
  return () => {
    shared ??= create().catch((error: unknown) => {
      shared = undefined;
      throw error;
    });
    return shared;
  };
}
