/**
 * Fault injection: rules are checked in insertion order; the first rule that
 * matches a request and still has uses left fires and is consumed.
 */

export type FaultAction =
  /** Answer with this status without applying anything (429 throttling shape, 503 serviceNotAvailable, 500 generalException, …). */
  | { type: 'status'; status: number; retryAfter?: string; body?: unknown }
  /** Destroy the socket without answering; nothing is applied. */
  | { type: 'reset' }
  /**
   * Handle normally (a PUT/PATCH is applied and stored), then destroy the socket: the "lost PUT response"
   * (docs/partner-center-api.md#concurrency-412-and-lost-responses).
   */
  | { type: 'apply-then-reset' }
  /** Handle normally, then answer this status instead (e.g. 502/504 from a proxy). */
  | { type: 'apply-then-status'; status: number }
  /** Wait, then handle normally. */
  | { type: 'delay'; ms: number }
  /** Before handling, another writer edits the stored referral (its eTag changes), then handle normally. */
  | { type: 'concurrent-edit'; edit: (referral: Record<string, unknown>) => void };

export interface FaultRule {
  /** Match only this method (case-insensitive); default any. */
  method?: string;
  /** Match only requests addressed to this referral id (case-insensitive); default any. */
  referralId?: string;
  /** How many matching requests the rule applies to; default 1. */
  times?: number;
  action: FaultAction;
}

interface ActiveRule {
  rule: FaultRule;
  remaining: number;
}

export class FaultRules {
  private rules: ActiveRule[] = [];

  add(rule: FaultRule): void {
    this.rules.push({ rule, remaining: rule.times ?? 1 });
  }

  clear(): void {
    this.rules = [];
  }

  /** The action for this request, consuming one use of the rule that fires. */
  take(method: string, referralId: string | undefined): FaultAction | undefined {
    const active = this.rules.find(({ rule, remaining }) => remaining > 0 && matches(rule, method, referralId));
    if (active === undefined) return undefined;
    active.remaining -= 1;
    return active.rule.action;
  }
}

function matches(rule: FaultRule, method: string, referralId: string | undefined): boolean {
  if (rule.method !== undefined && rule.method.toUpperCase() !== method.toUpperCase()) return false;
  if (rule.referralId === undefined) return true;
  return referralId !== undefined && rule.referralId.toLowerCase() === referralId.toLowerCase();
}
