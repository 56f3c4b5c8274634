/**
 * PARTNER_CENTER_AUTH=app-user end to end: the built app under the local host (plain Node), the real
 * @azure/identity and @azure/keyvault-secrets, a Key Vault over TLS, an Entra token endpoint, and a
 * Partner Center sandbox that accepts only App+User tokens.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SEED_IDS } from '../../dev/sandbox/seed.js';
import { type AuthWorld, SECRET_NAME, startAuthWorld } from '../support/auth-stack.js';
import { type HostProcess, startHostProcess } from '../support/stack.js';

const IDS = [SEED_IDS.newPending, SEED_IDS.newReceived, SEED_IDS.activeAccepted, SEED_IDS.activeSparse];
const DAY = 86_400_000;

describe('app-user mode with a healthy refresh token', () => {
  let world: AuthWorld;
  let app: HostProcess;
  let planted: string;
  beforeAll(async () => {
    world = await startAuthWorld();
    planted = world.entra.issueRefreshToken();
    world.vault.setSecret(SECRET_NAME, planted, new Date(Date.now() - 30 * DAY));
    app = await startHostProcess(world.env);
  });
  afterAll(async () => {
    await app?.host.stop();
    await world?.close();
  });

  it('health reports the stored refresh token before any event, without reading it out', async () => {
    const answer = await app.health();
    expect(answer.status, answer.text).toBe(200);
    expect(answer.body).toMatchObject({
      status: 'ok',
      auth: { mode: 'app-user', requests: 0, refreshToken: { ageDays: 30, daysLeft: 60 } },
      warnings: [],
    });
    expect(answer.text).not.toContain(planted);
  });

  it('50 concurrent events cost one redemption, and the rotated refresh token is written back', async () => {
    // Half dry runs (reads only), half writes across four referrals: 50 events, each needing tokens.
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        app.post({ referralId: IDS[i % IDS.length], statusReason: `burst ${i}`, dryRun: i % 2 === 0 }),
      ),
    );
    for (const answer of answers) expect([200, 409], answer.text).toContain(answer.status);
    expect(answers.filter((a) => a.status === 200).length).toBeGreaterThan(30);

    const redemptions = world.entra.redemptions.filter((r) => r.grantType === 'refresh_token');
    expect(redemptions).toHaveLength(1);
    expect(redemptions[0]).toMatchObject({ refreshToken: planted, clientAuth: 'assertion', status: 200 });
    expect(redemptions[0]?.scope).toBe('https://api.partner.microsoft.com/.default offline_access');
    const versions = world.vault.versions(SECRET_NAME);
    expect(versions).toHaveLength(2);
    expect(versions[1]?.value).not.toBe(planted);
    // Every Partner Center call carried the App+User token (the sandbox refuses anything else).
    expect(
      world.sandbox.requests.every((r) => world.entra.isAccessToken((r.headers.authorization ?? '').slice(7))),
    ).toBe(true);
  });

  it('health shows the rotation: a fresh refresh token and a successful acquisition', async () => {
    const answer = await app.health();
    expect(answer.body).toMatchObject({
      status: 'ok',
      auth: { mode: 'app-user', requests: 1, lastFailure: null, refreshToken: { ageDays: 0, daysLeft: 90 } },
    });
    expect((answer.body.auth as { lastSuccessAt: string }).lastSuccessAt).toEqual(expect.any(String));
  });

  it('the keep-alive timer redeems the refresh token although the access token is cached, and health shows it', async () => {
    const before = world.entra.redemptions.length;
    const run = await fetch(`${app.hostUrl}/admin/functions/refresh-token-keep-alive`, { method: 'POST', body: '{}' });
    expect(run.status).toBe(202);
    await app.host.waitFor(/REFRESH_TOKEN_RENEWED/);
    expect(world.entra.redemptions.slice(before)).toEqual([expect.objectContaining({ status: 200 })]);
    const answer = await app.health();
    const auth = answer.body.auth as { lastRenewalAt: string; lastRenewalFailure: string | null };
    expect(Date.parse(auth.lastRenewalAt)).toBeGreaterThan(Date.now() - 60_000);
    expect(auth.lastRenewalFailure).toBeNull();
  });

  it('never writes a token, refresh token or identity secret to the logs or the answers', async () => {
    const answer = await app.post({ referralId: SEED_IDS.activeAccepted, notes: 'x', dryRun: true });
    const everything = `${app.host.output()}\n${answer.text}\n${(await app.health()).text}`;
    const secrets = world.secrets();
    expect(secrets.length).toBeGreaterThan(5);
    for (const secret of secrets) expect(everything).not.toContain(secret);
  });
});

describe('app-user mode when things go wrong', () => {
  let world: AuthWorld;
  let app: HostProcess;
  beforeAll(async () => {
    // Access tokens too short to keep (under 30 s): every token need is a redemption, and a failed
    // redemption cannot fall back on a still-valid token.
    world = await startAuthWorld({ accessTokenLifetimeSeconds: 20 });
    app = await startHostProcess(world.env);
  });
  afterAll(async () => {
    await app?.host.stop();
    await world?.close();
  });
  beforeEach(() => {
    world.sandbox.reset();
  });

  it('warns in health when the refresh token is within 14 days of its 90-day limit', async () => {
    world.vault.setSecret(SECRET_NAME, world.entra.issueRefreshToken(), new Date(Date.now() - 80 * DAY));
    const answer = await app.health();
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ status: 'warning', auth: { refreshToken: { ageDays: 80, daysLeft: 10 } } });
    expect((answer.body.warnings as string[]).join()).toMatch(/expires in 10 days/);
  });

  it('N events within the write-back interval add no Key Vault version: each redeems the young stored token', async () => {
    const planted = world.entra.issueRefreshToken();
    world.vault.setSecret(SECRET_NAME, planted);
    const versions = world.vault.versionCount(SECRET_NAME);
    const before = world.entra.redemptions.length;
    for (let i = 0; i < 3; i++) {
      const answer = await app.post({ referralId: SEED_IDS.activeAccepted, notes: `rotation ${i}` });
      expect(answer.status, answer.text).toBe(200);
    }
    const redemptions = world.entra.redemptions.slice(before);
    expect(redemptions.length).toBeGreaterThanOrEqual(3);
    for (const redemption of redemptions) expect(redemption).toMatchObject({ refreshToken: planted, status: 200 });
    expect(world.vault.versionCount(SECRET_NAME)).toBe(versions);
  });

  it('Key Vault unavailable → 503 upstream_unavailable with Retry-After', async () => {
    world.vault.failNext(50, 503);
    const answer = await app.post({ referralId: SEED_IDS.activeAccepted, notes: 'kv down' });
    world.vault.failNext(0);
    expect(answer.status, answer.text).toBe(503);
    expect(answer.body).toMatchObject({ code: 'upstream_unavailable', retryable: true });
    expect(Number(answer.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(world.sandbox.requests).toEqual([]);
  });

  it('Entra unavailable → 503 upstream_unavailable with Retry-After', async () => {
    world.entra.failNext(50, 503);
    const answer = await app.post({ referralId: SEED_IDS.activeAccepted, notes: 'entra down' });
    world.entra.failNext(0);
    expect(answer.status, answer.text).toBe(503);
    expect(answer.body).toMatchObject({ code: 'upstream_unavailable', retryable: true });
    expect(answer.headers.get('retry-after')).not.toBeNull();
  });

  it('a revoked refresh token → 502 upstream_auth_failed telling to re-run the bootstrap, a log code, no retry storm', async () => {
    world.entra.revokeAll();
    const before = world.entra.redemptions.length;
    const answer = await app.post({ referralId: SEED_IDS.activeAccepted, notes: 'dead token' });
    expect(answer.status, answer.text).toBe(502);
    expect(answer.body).toMatchObject({ code: 'upstream_auth_failed', retryable: false });
    expect(String(answer.body.detail)).toContain('npm run auth:bootstrap');
    expect(world.entra.redemptions.length - before).toBe(1);
    await app.host.waitFor(/PARTNER_CENTER_REFRESH_TOKEN_INVALID/);

    for (let i = 0; i < 5; i++) {
      const again = await app.post({ referralId: SEED_IDS.activeAccepted, notes: `dead token ${i}` });
      expect(again.body).toMatchObject({ code: 'upstream_auth_failed' });
    }
    expect(world.entra.redemptions.length - before).toBe(1);
    expect(world.sandbox.requests).toEqual([]);
    const health = await app.health();
    expect(health.body).toMatchObject({
      status: 'warning',
      auth: { lastFailure: 'PARTNER_CENTER_REFRESH_TOKEN_INVALID' },
    });
  });

  it('a keep-alive that cannot redeem logs REFRESH_TOKEN_RENEWAL_FAILED with the reason, for an alert rule', async () => {
    // The token is still dead (previous test).
    await fetch(`${app.hostUrl}/admin/functions/refresh-token-keep-alive`, { method: 'POST', body: '{}' });
    const [line] = await app.host.waitFor(/\{[^\n]*REFRESH_TOKEN_RENEWAL_FAILED[^\n]*\}/);
    expect(JSON.parse(line)).toMatchObject({
      event: 'refresh-token-renewal',
      level: 'error',
      code: 'REFRESH_TOKEN_RENEWAL_FAILED',
      cause: 'PARTNER_CENTER_REFRESH_TOKEN_INVALID',
      detail: expect.stringContaining('npm run auth:bootstrap'),
    });
    const health = await app.health();
    expect(health.body).toMatchObject({ auth: { lastRenewalFailure: 'PARTNER_CENTER_REFRESH_TOKEN_INVALID' } });
  });
});

describe('app-user mode with a refresh token from a sign-in without MFA', () => {
  let world: AuthWorld;
  let app: HostProcess;
  beforeAll(async () => {
    world = await startAuthWorld();
    world.vault.setSecret(SECRET_NAME, world.entra.issueRefreshToken({ mfa: false }));
    // Every rotation written back, so the one redemption shows as one new version.
    app = await startHostProcess({ ...world.env, REFRESH_TOKEN_WRITE_INTERVAL_MINUTES: '0' });
  });
  afterAll(async () => {
    await app?.host.stop();
    await world?.close();
  });

  it('Partner Center answers 900421 → 502 mfa_required telling to re-run the bootstrap with MFA, no redemption loop', async () => {
    for (let i = 0; i < 3; i++) {
      const answer = await app.post({ referralId: SEED_IDS.activeAccepted, notes: `no mfa ${i}`, dryRun: true });
      expect(answer.status, answer.text).toBe(502);
      expect(answer.body).toMatchObject({ code: 'mfa_required', retryable: false });
      expect(answer.body.detail).toContain('Partner Center requires multi-factor authentication (error 900421)');
      expect(answer.body.detail).toContain('npm run auth:bootstrap');
      expect(answer.body.detail).not.toContain('Referrals Admin');
    }
    // One redemption and one write-back: the refused token is not invalidated and redeemed again per event.
    expect(world.entra.redemptions.filter((r) => r.grantType === 'refresh_token')).toHaveLength(1);
    expect(world.vault.versions(SECRET_NAME)).toHaveLength(2);
    expect(world.sandbox.requests).toHaveLength(3);
    expect(app.host.output()).toContain('PARTNER_CENTER_MFA_REQUIRED');
  });
});
