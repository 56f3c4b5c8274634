/** Which failure an Entra refusal is (by AADSTS code), and the token-exchange audience of each cloud. */
import { describe, expect, it } from 'vitest';
import { EntraError } from '../../shared/auth/entra.js';
import { classifyEntraRefusal, isClassifiedRefusal } from '../../shared/auth/entra-refusals.js';
import { tokenExchangeAudience, tokenExchangeScope } from '../../shared/auth/token-exchange.js';

const APP = '0b1c2d3e-4f50-4617-8a9b-0c1d2e3f4a5b';
const refusal = (error: string, ...codes: number[]) => classifyEntraRefusal(new EntraError(400, error, codes), APP);

describe('classifyEntraRefusal', () => {
  it.each([
    [[70008], 'PARTNER_CENTER_REFRESH_TOKEN_INVALID', 'new-sign-in', /npm run auth:bootstrap/],
    [[700082], 'PARTNER_CENTER_REFRESH_TOKEN_INVALID', 'new-sign-in', /unused for 90 days/],
    [[50173], 'PARTNER_CENTER_REFRESH_TOKEN_INVALID', 'new-sign-in', /revoked/],
    [[700084], 'PARTNER_CENTER_REFRESH_TOKEN_INVALID', 'new-sign-in', /AADSTS700084/],
    [[70043], 'PARTNER_CENTER_SIGN_IN_FREQUENCY', 'new-sign-in', /sign-in frequency/],
    [[50076], 'ENTRA_MFA_REQUIRED', 'new-sign-in', /registered for MFA/],
    [[53003], 'PARTNER_CENTER_CONDITIONAL_ACCESS_BLOCKED', 'retry-later', /sign-in logs/],
    [[65001], 'PARTNER_CENTER_CONSENT_MISSING', 'retry-later', /Grant admin consent/],
    [[50057], 'PARTNER_CENTER_USER_DISABLED', 'retry-later', /Enable or unblock the user/],
    [[], 'PARTNER_CENTER_REFRESH_TOKEN_INVALID', 'new-sign-in', /expired, revoked/],
  ] as const)('invalid_grant %j → %s (%s)', (codes, logCode, recovery, detail) => {
    const result = refusal('invalid_grant', ...codes);
    expect(result).toMatchObject({ logCode, recovery });
    expect(result.detail).toMatch(detail);
    if (codes.length > 0) expect(result.detail).toContain(`AADSTS${codes[0]}`);
  });

  it.each([70021, 700211, 700212, 700213])('AADSTS%i (no matching federated identity record) → retry later', (code) => {
    const result = refusal('invalid_request', code);
    expect(result).toMatchObject({ logCode: 'APP_CLIENT_FEDERATION_MISMATCH', recovery: 'retry-later' });
    expect(result.detail).toContain(APP);
    expect(isClassifiedRefusal(new EntraError(400, 'invalid_request', [code]))).toBe(true);
  });

  it('leaves other client errors to the generic client-credential handling', () => {
    expect(isClassifiedRefusal(new EntraError(401, 'invalid_client', [7000215]))).toBe(false);
    expect(isClassifiedRefusal(new EntraError(400, 'invalid_scope', [70011]))).toBe(false);
  });

  it('gives every failure with a different fix its own log code', () => {
    const codes = [70008, 70043, 50076, 53003, 65001, 50057].map((code) => refusal('invalid_grant', code).logCode);
    codes.push(refusal('invalid_request', 70021).logCode);
    expect(new Set(codes).size).toBe(codes.length);
  });
});

describe('tokenExchangeAudience', () => {
  it.each([
    ['https://login.microsoftonline.com', 'api://AzureADTokenExchange'],
    ['https://login.microsoftonline.com/', 'api://AzureADTokenExchange'],
    ['https://login.microsoftonline.us', 'api://AzureADTokenExchangeUSGov'],
    ['https://login.usgovcloudapi.net', 'api://AzureADTokenExchangeUSGov'],
    ['https://login.partner.microsoftonline.cn', 'api://AzureADTokenExchangeChina'],
    ['https://login.chinacloudapi.cn', 'api://AzureADTokenExchangeChina'],
    ['https://LOGIN.MICROSOFTONLINE.US', 'api://AzureADTokenExchangeUSGov'],
    ['https://127.0.0.1:41234', 'api://AzureADTokenExchange'],
  ])('%s → %s', (authority, audience) => {
    expect(tokenExchangeAudience(authority)).toBe(audience);
    expect(tokenExchangeScope(authority)).toBe(`${audience}/.default`);
  });
});
