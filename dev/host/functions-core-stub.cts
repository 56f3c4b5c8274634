/**
 * Stand-in for `@azure/functions-core`, the module the Functions worker provides at run time.
 *
 * When it resolves, `@azure/functions` leaves test mode and hands every `app.http(...)` call to
 * `registerFunction(metadata, handler)`: exactly what the worker receives. The local host records them
 * and serves them (docs/azure-functions.md#registrations-and-the-worker-module). CommonJS, because
 * `@azure/functions` loads it with `require`.
 */
interface Registration {
  metadata: unknown;
  handler: unknown;
}

const disposable = { dispose(): void {} };
const registrations: Registration[] = [];
const hooks: Array<{ hookName: string; callback: unknown }> = [];

const functionsCore = {
  registrations,
  hooks,
  setProgrammingModel(): void {},
  registerFunction(metadata: unknown, handler: unknown) {
    registrations.push({ metadata, handler });
    return disposable;
  },
  registerHook(hookName: string, callback: unknown) {
    hooks.push({ hookName, callback });
    return disposable;
  },
  log(level: string, category: string, message: string): void {
    if (level === 'warning' || level === 'error')
      process.stderr.write(`[functions ${level}] ${category}: ${message}\n`);
  },
};

export = functionsCore;
