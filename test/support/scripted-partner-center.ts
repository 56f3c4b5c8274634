/**
 * A scripted, in-process `PartnerCenterClient` for the use-case unit tests: no HTTP, no timers.
 *
 * The script is the exact sequence of upstream calls the test expects, one step per call, each naming
 * the method it answers (`GET.ok(referral)`, `PUT.status(412)`, `PUT.lost({ landed: true })`...). A call
 * the script does not expect (another method, or one past its end) is recorded and fails with a plain
 * `Error`, which the use case never retries: an extra PUT shows up as a failed test, never as a pass.
 *
 * Errors are the {@link AdapterError}s the real client (shared/partner-center/client.ts) raises for the
 * same answer: 404 → referral_not_found, 429/503 → upstream_unavailable, 504/408 → upstream_timeout,
 * other 5xx → upstream_error, 412/409 on a PUT → `precondition-failed`; a timeout → upstream_timeout, a
 * reset → upstream_error, a refused connection → upstream_unavailable. test/unit/scripted-partner-center.test.ts
 * checks the two against each other over loopback HTTP.
 *
 * The fake also holds the referral as Partner Center has it: `GET.ok(referral)` sets it, a PUT that
 * lands (`PUT.ok()`, `PUT.lost({ landed: true })`) replaces it with the body and a new eTag, and
 * `GET.current()` answers it, so a re-read after a lost answer sees whether the write landed. A landing
 * PUT whose If-Match is not the held eTag is a script error (Partner Center would answer 412).
 * Partner Center semantics: docs/partner-center-api.md and
 * https://learn.microsoft.com/partner-center/developer/update-a-referral
 */
import { AdapterError, type ErrorCode } from '../../shared/core/errors.js';
import type { JsonObject } from '../../shared/core/referral.js';
import type {
  PartnerCenterClient,
  PlannedWrite,
  ReadResult,
  RequestContext,
  WriteResult,
} from '../../shared/partner-center/client.js';

export type Method = 'GET' | 'PUT';
/** How an exchange fails without an HTTP answer. */
export type NetworkFailure = 'timeout' | 'reset' | 'refused';

/** One call as the fake received it. */
export interface RecordedCall {
  method: Method;
  referralId: string;
  /** PUT only. */
  ifMatch?: string;
  /** PUT only: a deep copy of the body sent. */
  body?: JsonObject;
  correlationId: string;
  timeoutMs: number;
  /** What the fake answered: `200`, `412`, `timeout`, `lost+landed:timeout`, `unexpected`... */
  answer: string;
}

export interface StepOptions {
  /** Runs when the call arrives, before it is answered (e.g. to move a fake clock, or signal a test). */
  onCall?: (call: RecordedCall) => unknown;
  /** The answer waits for this promise (a gate the test opens). */
  until?: Promise<unknown>;
}

interface StatusOptions extends StepOptions {
  /** Sent as `Retry-After` (delta-seconds). */
  retryAfterSeconds?: number;
}

type Answer =
  | { kind: 'referral'; referral: JsonObject; eTag: string }
  | { kind: 'current' }
  | { kind: 'written' }
  | { kind: 'status'; status: number; retryAfterSeconds?: number }
  | { kind: 'network'; failure: NetworkFailure }
  | { kind: 'lost'; landed: boolean; via: NetworkFailure | number };

export interface Step {
  method: Method;
  answer: Answer;
  options: StepOptions;
}

const step = (method: Method, answer: Answer, options: StepOptions = {}): Step => ({ method, answer, options });
const statusStep = (method: Method, status: number, options: StatusOptions = {}): Step => {
  const { retryAfterSeconds, ...rest } = options;
  return step(
    method,
    { kind: 'status', status, ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }) },
    rest,
  );
};

/** Answers to a GET. */
export const GET = {
  /** 200 with this referral; its eTag is `eTag`, else the body's `eTag`. It becomes the held referral. */
  ok: (referral: JsonObject, eTag?: string, options?: StepOptions): Step => {
    const tag = eTag ?? (typeof referral.eTag === 'string' ? referral.eTag : undefined);
    if (tag === undefined) throw new Error('GET.ok needs an eTag (argument or body)');
    return step('GET', { kind: 'referral', referral: { ...structuredClone(referral), eTag: tag }, eTag: tag }, options);
  },
  /** 200 with the referral the fake holds (as the last landed PUT left it). */
  current: (options?: StepOptions): Step => step('GET', { kind: 'current' }, options),
  /** An error status (404, 429, 500, 503...). */
  status: (status: number, options?: StatusOptions): Step => statusStep('GET', status, options),
  network: (failure: NetworkFailure, options?: StepOptions): Step => step('GET', { kind: 'network', failure }, options),
};

/** Answers to a PUT. */
export const PUT = {
  /** 200: the body is written with a new eTag and echoed back. */
  ok: (options?: StepOptions): Step => step('PUT', { kind: 'written' }, options),
  /** An error status; 412 and 409 are the `precondition-failed` result, as from the real client. */
  status: (status: number, options?: StatusOptions): Step => statusStep('PUT', status, options),
  /** No answer (or a 5xx) after the write did, or did not, land: the outcome is unknown to the caller. */
  lost: (
    { landed, via = 'timeout' }: { landed: boolean; via?: NetworkFailure | number },
    options?: StepOptions,
  ): Step => step('PUT', { kind: 'lost', landed, via }, options),
};

export class ScriptedPartnerCenter implements PartnerCenterClient {
  readonly calls: RecordedCall[] = [];
  readonly #script: Step[];
  #held: { referral: JsonObject; eTag: string } | undefined;
  #versions = 0;

  constructor(script: readonly Step[]) {
    this.#script = [...script];
  }

  /** Appends steps (e.g. for a redelivery). */
  append(...steps: Step[]): this {
    this.#script.push(...steps);
    return this;
  }

  /** Calls by method. */
  get gets(): RecordedCall[] {
    return this.calls.filter((c) => c.method === 'GET');
  }
  get puts(): RecordedCall[] {
    return this.calls.filter((c) => c.method === 'PUT');
  }
  /** The calls as `GET PUT GET`, for one-line assertions on the sequence. */
  get sequence(): string {
    return this.calls.map((c) => c.method).join(' ');
  }
  /** Steps not consumed yet. */
  get unused(): number {
    return this.#script.length;
  }
  /** The referral as Partner Center holds it now. */
  get held(): JsonObject | undefined {
    return this.#held && structuredClone(this.#held.referral);
  }

  async getReferral(referralId: string, context: RequestContext): Promise<ReadResult> {
    const { call, answer } = await this.#next('GET', referralId, context);
    if (answer.kind === 'referral') this.#held = { referral: answer.referral, eTag: answer.eTag };
    if (answer.kind === 'referral' || answer.kind === 'current') {
      const held = this.#hold(call);
      return this.#answer(call, context, 200, { referral: structuredClone(held.referral), eTag: held.eTag });
    }
    throw this.#failure(call, context, answer);
  }

  /** Writes as `PUT` (the default write method). */
  writeReferral(id: string, write: PlannedWrite, eTag: string, context: RequestContext): Promise<WriteResult> {
    return this.putReferral(id, write.body, eTag, context);
  }

  async putReferral(referralId: string, body: JsonObject, eTag: string, context: RequestContext): Promise<WriteResult> {
    const { call, answer } = await this.#next('PUT', referralId, context, {
      body: structuredClone(body),
      ifMatch: eTag,
    });
    if (answer.kind === 'written' || (answer.kind === 'lost' && answer.landed)) {
      const held = this.#hold(call);
      if (eTag !== held.eTag) {
        throw this.#scriptError(
          call,
          `the script lands a PUT with If-Match ${eTag}, but the referral is at ${held.eTag}`,
        );
      }
      const newETag = `"v${++this.#versions}"`;
      this.#held = { referral: { ...structuredClone(body), eTag: newETag }, eTag: newETag };
      if (answer.kind === 'written') {
        return this.#answer(call, context, 200, {
          kind: 'written',
          referral: structuredClone(this.#held.referral),
          eTag: newETag,
        });
      }
    }
    if (answer.kind === 'status' && (answer.status === 412 || answer.status === 409)) {
      return this.#answer(call, context, answer.status, { kind: 'precondition-failed', upstreamStatus: answer.status });
    }
    throw this.#failure(call, context, answer);
  }

  async close(): Promise<void> {}

  async #next(
    method: Method,
    referralId: string,
    context: RequestContext,
    put: { body?: JsonObject; ifMatch?: string } = {},
  ): Promise<{ call: RecordedCall; answer: Answer }> {
    const call: RecordedCall = {
      method,
      referralId,
      ...put,
      correlationId: context.correlationId,
      timeoutMs: context.timeoutMs,
      answer: 'unexpected',
    };
    this.calls.push(call);
    const next = this.#script[0];
    if (!next || next.method !== method) {
      throw this.#scriptError(call, next ? `the script expects a ${next.method}` : 'the script has ended');
    }
    this.#script.shift();
    await next.options.onCall?.(call);
    await next.options.until;
    return { call, answer: next.answer };
  }

  #hold(call: RecordedCall): { referral: JsonObject; eTag: string } {
    if (!this.#held) throw this.#scriptError(call, 'no referral is held yet (start the script with GET.ok)');
    return this.#held;
  }

  #answer<T>(call: RecordedCall, context: RequestContext, status: number, result: T): T {
    call.answer = String(status);
    context.observe?.(0, status);
    return result;
  }

  #failure(call: RecordedCall, context: RequestContext, answer: Answer): Error {
    if (answer.kind === 'status') {
      call.answer = String(answer.status);
      context.observe?.(0, answer.status);
      return statusError(answer.status, answer.retryAfterSeconds, call);
    }
    if (answer.kind === 'network') {
      call.answer = answer.failure;
      context.observe?.(0, undefined);
      return networkError(answer.failure, call.method);
    }
    if (answer.kind === 'lost') {
      call.answer = `lost+${answer.landed ? 'landed' : 'not-landed'}:${answer.via}`;
      if (typeof answer.via === 'number') {
        context.observe?.(0, answer.via);
        return statusError(answer.via, undefined, call);
      }
      context.observe?.(0, undefined);
      return networkError(answer.via, call.method);
    }
    return this.#scriptError(call, `a ${answer.kind} answer does not fit a ${call.method}`);
  }

  #scriptError(call: RecordedCall, why: string): Error {
    call.answer = 'unexpected';
    return new Error(`ScriptedPartnerCenter: unexpected ${call.method} #${this.calls.length}: ${why}`);
  }
}

/** As client.ts `statusError`. */
function statusError(status: number, retryAfterSeconds: number | undefined, call: RecordedCall): AdapterError {
  const code: ErrorCode =
    status === 404
      ? 'referral_not_found'
      : status === 401 || status === 403
        ? 'upstream_auth_failed'
        : status === 429 || status === 503
          ? 'upstream_unavailable'
          : status === 504 || status === 408
            ? 'upstream_timeout'
            : status >= 500
              ? 'upstream_error'
              : 'upstream_rejected';
  return new AdapterError(code, `Partner Center answered ${call.method} with ${status} (scripted).`, {
    upstreamStatus: status,
    extensions: { referralId: call.referralId, upstream: { status } },
    ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
  });
}

/** As client.ts `networkError`. */
function networkError(failure: NetworkFailure, method: Method): AdapterError {
  if (failure === 'timeout') {
    return new AdapterError('upstream_timeout', `Partner Center did not answer the ${method} in time (scripted).`);
  }
  if (failure === 'refused') {
    return new AdapterError('upstream_unavailable', 'Could not connect to Partner Center (ECONNREFUSED, scripted).');
  }
  return new AdapterError(
    'upstream_error',
    `The connection to Partner Center failed during the ${method} (ECONNRESET, scripted).`,
  );
}

/** A promise with its resolver, for gates (`Promise.withResolvers` is ES2024; the project targets ES2023). */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}
