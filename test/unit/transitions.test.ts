import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AdapterError } from '../../shared/core/errors.js';
import { planUpdate } from '../../shared/core/plan-update.js';
import {
  type JsonObject,
  type ReferralState,
  STATUSES,
  SUBSTATUSES,
  SUBSTATUSES_BY_STATUS,
} from '../../shared/core/referral.js';
import { allowedTargets, assertWritable, isAllowedTransition } from '../../shared/core/transitions.js';
import type { UpdateIntent } from '../../shared/core/update.js';
import { ALLOWED_MOVES, VALID_PAIRS as DOCUMENTED_PAIRS } from '../support/documented-transitions.js';

const pair = (s: string) => {
  const [status, substatus] = s.split('/');
  return { status, substatus } as ReferralState;
};
const VALID_PAIRS: ReferralState[] = DOCUMENTED_PAIRS.map(pair);

function errorOf(fn: () => unknown): AdapterError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(AdapterError);
    return error as AdapterError;
  }
  throw new Error('expected an AdapterError');
}

describe('transition table', () => {
  it('allows exactly the documented moves between valid pairs', () => {
    for (const from of VALID_PAIRS) {
      for (const to of VALID_PAIRS) {
        const key = `${from.status}/${from.substatus}>${to.status}/${to.substatus}`;
        expect(isAllowedTransition(from, to), key).toBe(ALLOWED_MOVES.has(key));
      }
    }
  });

  it('makes Closed terminal', () => {
    for (const substatus of SUBSTATUSES_BY_STATUS.Closed) {
      expect(allowedTargets({ status: 'Closed', substatus })).toEqual([]);
    }
  });

  it('lists allowed targets for the 422 body', () => {
    expect(allowedTargets(pair('Active/Accepted')).map((t) => `${t.status}/${t.substatus}`)).toEqual([
      'Active/Accepted',
      'Closed/Won',
      'Closed/Lost',
      'Closed/Declined',
      'Closed/Expired',
    ]);
  });
});

describe('assertWritable', () => {
  it('refuses any change to a closed referral with referral_closed', () => {
    const error = errorOf(() =>
      assertWritable('r1', { status: 'Closed', substatus: 'Lost' }, { status: 'Closed', substatus: 'Won' }),
    );
    expect(error.code).toBe('referral_closed');
    expect(error.status).toBe(422);
    expect(error.extensions.current).toEqual({ status: 'Closed', substatus: 'Lost' });
    expect(errorOf(() => assertWritable('r1', { status: 'Closed', substatus: 'Won' }, {})).code).toBe(
      'referral_closed',
    );
  });

  it('refuses a backward move with the current state and the allowed targets', () => {
    const error = errorOf(() =>
      assertWritable('r1', { status: 'Active', substatus: 'Accepted' }, { status: 'New', substatus: 'Pending' }),
    );
    expect(error.code).toBe('transition_not_allowed');
    expect(error.extensions.current).toEqual({ status: 'Active', substatus: 'Accepted' });
    expect(error.extensions.requested).toEqual({ status: 'New', substatus: 'Pending' });
    expect(error.extensions.allowedTargets).toHaveLength(5);
  });

  it('refuses to write a referral in a state the rules do not know', () => {
    const states: JsonObject[] = [
      { status: 'Error', substatus: 'Error' },
      { status: 'New', substatus: 'Won' },
      { status: 'None' },
    ];
    for (const current of states) {
      const error = errorOf(() => assertWritable('r1', current, {}));
      expect(error.code).toBe('transition_not_allowed');
      expect(error.extensions.allowedTargets).toEqual([]);
    }
  });
});

describe('planUpdate against the rules (properties)', () => {
  const stateArb = fc.constantFrom(...VALID_PAIRS);
  const intentArb: fc.Arbitrary<UpdateIntent> = fc.oneof(
    fc.constantFrom(...SUBSTATUSES).map((substatus) => {
      const status = STATUSES.find((s) => SUBSTATUSES_BY_STATUS[s].includes(substatus));
      return { status, substatus } as UpdateIntent;
    }),
    fc.constant<UpdateIntent>({ status: 'Active', substatus: 'Accepted' }),
    fc.constant<UpdateIntent>({ status: 'New' }),
  );

  it('writes only documented moves, refuses the rest, and never refuses a no-op', () => {
    fc.assert(
      fc.property(stateArb, intentArb, fc.boolean(), (current, intent, withDeal) => {
        const referral = { id: 'r1', ...current, details: { dealValue: 1 } };
        const full: UpdateIntent = withDeal ? { ...intent, dealValue: 2 } : intent;
        const target = intent.substatus ? `${intent.status}/${intent.substatus}` : `New/${current.substatus}`;
        const from = `${current.status}/${current.substatus}`;
        const noop = target === from && !withDeal;
        let result: ReturnType<typeof planUpdate> | AdapterError;
        try {
          result = planUpdate('r1', referral, full);
        } catch (error) {
          result = error as AdapterError;
        }
        if (noop) {
          expect(result).toEqual({ kind: 'unchanged' });
        } else if (current.status === 'Closed') {
          expect((result as AdapterError).code).toBe('referral_closed');
        } else if (target === from || ALLOWED_MOVES.has(`${from}>${target}`)) {
          expect(result).toMatchObject({ kind: 'write' });
        } else {
          expect((result as AdapterError).code).toBe('transition_not_allowed');
        }
      }),
    );
  });

  it('lets New alone keep the current New substatus, and refuses it elsewhere', () => {
    expect(planUpdate('r1', { status: 'New', substatus: 'Received' }, { status: 'New' })).toEqual({
      kind: 'unchanged',
    });
    const error = errorOf(() => planUpdate('r1', { status: 'Active', substatus: 'Accepted' }, { status: 'New' }));
    expect(error.code).toBe('transition_not_allowed');
  });
});
