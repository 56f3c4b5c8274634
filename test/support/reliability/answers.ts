/**
 * What a caller of the reliability run sees (pure): its answers, the figures counted over them, and the
 * checks every answer must pass on its own: status, media type, problem document, replay header.
 */
import type { JsonRecord } from './model.js';
import { RETRYABLE, RETRYABLE_CODES } from './parameters.js';
import type { PlannedEvent } from './plan.js';
import type { Violate } from './violations.js';

export interface Attempt {
  status: number;
  text: string;
  contentType: string;
  replayed: boolean;
  body: JsonRecord | undefined;
}

export type DeliveryRole = 'first' | 'copy' | 'redelivery' | 'reuse';

export interface Delivery {
  role: DeliveryRole;
  attempts: Attempt[];
}

/** The run's figures (test-results/reliability.json), counted as it goes. */
export function newFigures() {
  return {
    deliveries: { first: 0, copy: 0, redelivery: 0, reuse: 0 } as Record<DeliveryRole, number>,
    reusesSkipped: 0,
    httpRequests: 0,
    callerRetries: 0,
    deliveriesFailedAfterRetries: 0,
    answersByStatus: {} as Record<string, number>,
    answersByOutcome: {} as Record<string, number>,
    replayed: 0,
    retryable5xxAnswers: 0,
    unresolvedEvents: 0,
  };
}
export type Figures = ReturnType<typeof newFigures>;

export const bump = (table: Record<string, number>, key: string) => {
  table[key] = (table[key] ?? 0) + 1;
};

/** Checks every answer on its own: status, media type, problem document, replay header. */
export function checkAttempt(
  event: PlannedEvent,
  role: DeliveryRole,
  answer: Attempt,
  figures: Figures,
  violate: Violate,
): void {
  const where = `event ${event.id} (${event.kind}, ${role}) on ${event.referralId}`;
  bump(figures.answersByStatus, String(answer.status));
  if (answer.replayed) figures.replayed++;
  if (answer.status === 0) {
    violate('noAnswer', `${where}: the host did not answer: ${answer.text}`);
    return;
  }
  const body = answer.body;
  if (answer.status >= 500) {
    const allowed = RETRYABLE_CODES[answer.status] ?? [];
    if (allowed.includes(String(body?.code)) && body?.retryable === true) figures.retryable5xxAnswers++;
    else violate('responses5xx', `${where}: ${answer.status} ${answer.text}`);
  }
  if (answer.status === 200) {
    if (!answer.contentType.startsWith('application/json')) {
      violate('wrongAnswer', `${where}: 200 with content-type ${answer.contentType}`);
    }
    if (body === undefined || body.referralId !== event.referralId || body.eventId !== event.id) {
      violate('wrongAnswer', `${where}: 200 without the referral id and event id: ${answer.text}`);
    } else {
      bump(figures.answersByOutcome, String(body.outcome));
    }
  } else if (answer.status >= 400) {
    if (!answer.contentType.startsWith('application/problem+json')) {
      violate('problemJson', `${where}: ${answer.status} with content-type "${answer.contentType}"`);
    }
    const complete =
      body !== undefined &&
      typeof body.type === 'string' &&
      typeof body.title === 'string' &&
      body.status === answer.status &&
      typeof body.detail === 'string' &&
      typeof body.code === 'string' &&
      typeof body.retryable === 'boolean';
    if (!complete) {
      violate('problemJson', `${where}: ${answer.status} is not a complete problem document: ${answer.text}`);
    } else {
      bump(figures.answersByOutcome, String(body.code));
      if (body.retryable !== RETRYABLE.has(answer.status)) {
        violate('wrongAnswer', `${where}: ${answer.status} ${String(body.code)} says retryable=${body.retryable}`);
      }
      if (answer.status === 409 && !(RETRYABLE_CODES[409] ?? []).includes(String(body.code))) {
        violate('wrongAnswer', `${where}: 409 with code ${String(body.code)}`);
      }
    }
  }
  if (![200, 409, 422, 502, 503, 504].includes(answer.status)) {
    violate('wrongAnswer', `${where}: status ${answer.status} has no place in this run: ${answer.text}`);
  }
  if (answer.replayed && (RETRYABLE.has(answer.status) || answer.status >= 500)) {
    violate('wrongAnswer', `${where}: a retryable answer was replayed: ${answer.status} ${answer.text}`);
  }
}

export const isFinal = (answer: Attempt) => answer.status !== 0 && !RETRYABLE.has(answer.status);
/** A retryable answer after which the event's PUT may have landed. */
export const mayHaveWritten = (answer: Attempt) =>
  answer.status === 0 || (RETRYABLE.has(answer.status) && answer.body?.code !== 'in_progress');
