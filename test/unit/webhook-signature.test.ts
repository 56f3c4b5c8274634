/**
 * Standard Webhooks interop (shared/http/webhook-signature.ts): the official `standardwebhooks` package is
 * the oracle. What it signs, `verifyWebhookSignature` accepts; what `signWebhook` signs, its `verify()`
 * accepts; both reproduce the specification's published test vector; rotation (two secrets) works both ways.
 */
import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { signWebhook, verifyWebhookSignature } from '../../shared/http/webhook-signature.js';

/** The test vector published with the Standard Webhooks specification (and its libraries' tests). */
const VECTOR = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  timestamp: 1614265330,
  payload: '{"test": 2432232314}',
  signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
};

const newSecret = () => `whsec_${randomBytes(32).toString('base64')}`;
const PAYLOAD = JSON.stringify({ referralId: 'a5f1c8d2-0000-4000-8000-000000000001', notes: 'Müller € 🚀' });

function headers(id: string, timestamp: number, signature: string): Headers {
  return new Headers({ 'webhook-id': id, 'webhook-timestamp': String(timestamp), 'webhook-signature': signature });
}

/** Our verifier, as the function app calls it (raw body bytes), at `now`. */
function ours(secrets: string[], id: string, timestamp: number, signature: string, payload = PAYLOAD, now = timestamp) {
  verifyWebhookSignature(secrets, headers(id, timestamp, signature), Buffer.from(payload, 'utf8'), now);
}

/** The library's verifier: throws unless one `v1` entry matches. */
function theirs(secret: string, id: string, timestamp: number, signature: string, payload = PAYLOAD) {
  return new Webhook(secret).verify(payload, {
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': signature,
  });
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

describe('Standard Webhooks interop (the standardwebhooks package)', () => {
  it('both reproduce the published test vector, and we verify it', () => {
    const at = new Date(VECTOR.timestamp * 1000);
    expect(new Webhook(VECTOR.secret).sign(VECTOR.id, at, VECTOR.payload)).toBe(VECTOR.signature);
    expect(signWebhook(VECTOR.secret, VECTOR.id, VECTOR.timestamp, VECTOR.payload)).toBe(VECTOR.signature);
    expect(() => ours([VECTOR.secret], VECTOR.id, VECTOR.timestamp, VECTOR.signature, VECTOR.payload)).not.toThrow();
    expect(() => ours([VECTOR.secret], VECTOR.id, VECTOR.timestamp, VECTOR.signature, '{"test": 2432232315}')).toThrow(
      /No webhook-signature entry matches/,
    );
  });

  it('accepts what the library signs, with the whsec_ secret or the library given the bare base64 key', () => {
    const secret = newSecret();
    const timestamp = nowSeconds();
    for (const librarySecret of [secret, secret.slice('whsec_'.length)]) {
      const signature = new Webhook(librarySecret).sign('msg_1', new Date(timestamp * 1000), PAYLOAD);
      expect(() => ours([secret], 'msg_1', timestamp, signature)).not.toThrow();
      // Bound to the id, the timestamp and the body.
      expect(() => ours([secret], 'msg_2', timestamp, signature)).toThrow(/No webhook-signature entry matches/);
      expect(() => ours([secret], 'msg_1', timestamp + 1, signature)).toThrow(/No webhook-signature entry matches/);
      expect(() => ours([secret], 'msg_1', timestamp, signature, `${PAYLOAD} `)).toThrow(/No webhook-signature/);
    }
  });

  it('signs what the library verifies, and the library refuses it under another secret', () => {
    const secret = newSecret();
    const timestamp = nowSeconds();
    const signature = signWebhook(secret, 'msg_1', timestamp, PAYLOAD);
    expect(theirs(secret, 'msg_1', timestamp, signature)).toEqual(JSON.parse(PAYLOAD));
    expect(theirs(secret.slice('whsec_'.length), 'msg_1', timestamp, signature)).toEqual(JSON.parse(PAYLOAD));
    expect(() => theirs(newSecret(), 'msg_1', timestamp, signature)).toThrow(/No matching signature/);
  });

  it('rotation: two configured secrets accept either signer; a two-entry header passes either verifier', () => {
    const [old, next, stranger] = [newSecret(), newSecret(), newSecret()];
    const timestamp = nowSeconds();
    const at = new Date(timestamp * 1000);
    // The sender signs with the old secret, then the new one, then with both at once (space-separated).
    const byOld = new Webhook(old).sign('msg_1', at, PAYLOAD);
    const byNext = new Webhook(next).sign('msg_1', at, PAYLOAD);
    for (const signature of [byOld, byNext, `${byOld} ${byNext}`, `${byNext} ${byOld}`]) {
      expect(() => ours([old, next], 'msg_1', timestamp, signature), signature).not.toThrow();
    }
    expect(() => ours([stranger], 'msg_1', timestamp, `${byOld} ${byNext}`)).toThrow(/No webhook-signature/);
    expect(() => ours([next], 'msg_1', timestamp, byOld)).toThrow(/No webhook-signature entry matches/);

    // Our signatures under both secrets, as one header: the library verifies it with either secret.
    const both = `${signWebhook(old, 'msg_1', timestamp, PAYLOAD)} ${signWebhook(next, 'msg_1', timestamp, PAYLOAD)}`;
    expect(theirs(old, 'msg_1', timestamp, both)).toEqual(JSON.parse(PAYLOAD));
    expect(theirs(next, 'msg_1', timestamp, both)).toEqual(JSON.parse(PAYLOAD));
    expect(() => theirs(stranger, 'msg_1', timestamp, both)).toThrow(/No matching signature/);
  });

  it('both refuse a timestamp more than 5 minutes away', () => {
    const secret = newSecret();
    const stale = nowSeconds() - 301;
    const signature = new Webhook(secret).sign('msg_1', new Date(stale * 1000), PAYLOAD);
    expect(() => ours([secret], 'msg_1', stale, signature, PAYLOAD, nowSeconds())).toThrow(/webhook-timestamp/);
    expect(() => theirs(secret, 'msg_1', stale, signature)).toThrow(/too old/);
  });
});

describe('only canonical base64 is a signature (#11 item 2)', () => {
  it('refuses other spellings of a valid signature: no padding, URL-safe alphabet, stray characters, pad bits', () => {
    const secret = newSecret();
    const timestamp = nowSeconds();
    const signature = signWebhook(secret, 'msg_1', timestamp, PAYLOAD);
    const value = signature.slice('v1,'.length);
    expect(() => ours([secret], 'msg_1', timestamp, signature)).not.toThrow();
    // 32 bytes: 43 characters and one "=", the last character carrying 2 pad bits.
    const last = value.at(-2) as string;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const padBits =
      alphabet[alphabet.indexOf(last) | 1] === last
        ? alphabet[alphabet.indexOf(last) & ~1]
        : alphabet[alphabet.indexOf(last) | 1];
    const spellings = [
      value.replace(/=+$/, ''),
      value.replaceAll('+', '-').replaceAll('/', '_'),
      `${value.slice(0, 10)}!${value.slice(10)}`,
      `${value.slice(0, 10)}.${value.slice(10)}`,
      `${value.slice(0, -2)}${padBits}=`,
      `${value}=`,
    ].filter((spelling) => spelling !== value);
    expect(spellings.length).toBeGreaterThanOrEqual(5);
    for (const spelling of spellings) {
      expect(Buffer.from(spelling, 'base64').equals(Buffer.from(value, 'base64')), spelling).toBe(true);
      expect(() => ours([secret], 'msg_1', timestamp, `v1,${spelling}`), spelling).toThrow(/No webhook-signature/);
    }
  });
});
