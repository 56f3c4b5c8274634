/**
 * POST /api/app-user/authorize and POST /api/app-user/redeem (admin key: the host's master key): the
 * bootstrap's browser sign-in, redeemed by the app itself (docs/authentication.md#the-bootstrap). The routes
 * do not start with `admin/`: the Functions host reserves that prefix for its own API and refuses such a route.
 */
import { app, type HttpRequest, type HttpResponseInit } from '@azure/functions';
import { APP_USER_CONSENT } from '../shared/runtime.js';
import { authorizeConsent, redeemConsent } from '../shared/use-cases/app-user-consent.js';

export async function appUserAuthorize(request: HttpRequest): Promise<HttpResponseInit> {
  return authorizeConsent(APP_USER_CONSENT, () => request.json());
}

export async function appUserRedeem(request: HttpRequest): Promise<HttpResponseInit> {
  return redeemConsent(APP_USER_CONSENT, () => request.json());
}

app.http('app-user-authorize', {
  methods: ['POST'],
  authLevel: 'admin',
  route: 'app-user/authorize',
  handler: appUserAuthorize,
});
app.http('app-user-redeem', {
  methods: ['POST'],
  authLevel: 'admin',
  route: 'app-user/redeem',
  handler: appUserRedeem,
});
