/**
 * The Referrals API operations: authentication, routing, GET by id, PUT (full
 * replace) and PATCH (JSON Patch). Handlers return a Reply value; the server
 * decides whether to send it (fault injection may drop or replace it).
 */
import { errorReply, invalidRequest, mfaRequired, notFound, preconditionFailed, unauthenticated } from './errors.js';
import { isPlainObject, parseJson } from './json.js';
import { listReferrals } from './list.js';
import { applyJsonPatch } from './patch.js';
import { emptyReply, jsonReply, type Reply } from './reply.js';
import { referralResource } from './representation.js';
import { matchRoute } from './routes.js';
import type { ReferralStore, StoreEntry } from './store.js';
import { checkNoLinks, checkPatchPaths, validateReplacement } from './validation.js';

export interface ApiContext {
  store: ReferralStore;
  /** The sandbox origin, used for `links` and `@odata.nextLink`. */
  origin: string;
  acceptToken: (token: string) => boolean;
  /** False for an App+User token from a sign-in without MFA: 401 with error code 900421. */
  tokenHasMfa: (token: string) => boolean;
}

export interface ApiRequest {
  method: string;
  url: URL;
  /** Lower-cased header names. */
  headers: Readonly<Record<string, string>>;
  body: string;
}

/** Every request needs `Authorization: Bearer <token>` (docs/partner-center-api.md#request-headers). */
function checkAuth(ctx: ApiContext, headers: ApiRequest['headers']): Reply | undefined {
  const header = headers.authorization;
  if (header === undefined || header === '') return unauthenticated('The Authorization header is missing.');
  const token = /^Bearer +(\S+)$/i.exec(header)?.[1];
  if (token === undefined) return unauthenticated('The Authorization header must be "Bearer <access token>".');
  if (!ctx.acceptToken(token)) return unauthenticated('The access token was rejected.');
  if (!ctx.tokenHasMfa(token)) return mfaRequired();
  return undefined;
}

function methodNotAllowed(method: string, allow: string): Reply {
  return errorReply(405, 'invalidRequest', `Method ${method} is not allowed here; allowed: ${allow}.`, { allow });
}

/** Writes must be JSON, sent as `Content-Type: application/json` (docs/partner-center-api.md#request-headers). */
function checkJsonContentType(headers: ApiRequest['headers']): Reply | undefined {
  const mediaType = (headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (mediaType === 'application/json' || /^application\/[\w.-]+\+json$/.test(mediaType)) return undefined;
  return errorReply(
    415,
    'invalidRequest',
    `Content-Type must be application/json; got '${headers['content-type'] ?? ''}'.`,
  );
}

function resourceReply(status: number, entry: StoreEntry, ctx: ApiContext, withContext: boolean): Reply {
  return jsonReply(status, referralResource(entry, ctx.origin, withContext), { etag: entry.eTag });
}

function getReferral(ctx: ApiContext, id: string): Reply {
  const entry = ctx.store.get(id);
  return entry === undefined ? notFound(id) : resourceReply(200, entry, ctx, true);
}

/** PUT: full replace under a mandatory If-Match (docs/partner-center-api.md#put-full-replace, #etag-and-if-match). */
function putReferral(ctx: ApiContext, id: string, req: ApiRequest): Reply {
  const entry = ctx.store.get(id);
  if (entry === undefined) return notFound(id);
  const ifMatch = req.headers['if-match'];
  if (ifMatch === undefined || ifMatch === '') {
    return invalidRequest(
      "The If-Match header is required to update a referral: send the referral's eTag, quotes included.",
    );
  }
  const badType = checkJsonContentType(req.headers);
  if (badType !== undefined) return badType;
  const parsed = parseJson(req.body);
  if (!parsed.ok) return invalidRequest(parsed.message);
  const body = parsed.value;
  if (!isPlainObject(body)) return invalidRequest('The PUT body must be a Referral JSON object.');
  // Byte-for-byte: an eTag with stripped, doubled or re-escaped quotes is stale
  // (docs/partner-center-api.md#etag-and-if-match).
  if (ifMatch !== entry.eTag) return preconditionFailed();
  const problem = checkNoLinks(body) ?? validateReplacement(entry.doc, body);
  if (problem !== undefined) return invalidRequest(problem);
  return resourceReply(200, ctx.store.write(id, body), ctx, false);
}

/**
 * PATCH: JSON Patch, If-Match optional; no operation on the whole document or a service-owned path; the
 * resulting document goes through PUT's checks (docs/partner-center-api.md#patch-json-patch).
 */
function patchReferral(ctx: ApiContext, id: string, req: ApiRequest): Reply {
  const entry = ctx.store.get(id);
  if (entry === undefined) return notFound(id);
  const badType = checkJsonContentType(req.headers);
  if (badType !== undefined) return badType;
  const parsed = parseJson(req.body);
  if (!parsed.ok) return invalidRequest(parsed.message);
  if (!Array.isArray(parsed.value)) {
    return invalidRequest('The PATCH body must be a JSON Patch array of operations (RFC 6902), not an object.');
  }
  const ifMatch = req.headers['if-match'];
  if (ifMatch !== undefined && ifMatch !== '' && ifMatch !== entry.eTag) return preconditionFailed();
  const ownedPath = checkPatchPaths(parsed.value);
  if (ownedPath !== undefined) return invalidRequest(ownedPath);
  const patched = applyJsonPatch(entry.doc, parsed.value);
  if (!patched.ok) return invalidRequest(patched.message);
  const problem = validateReplacement(entry.doc, patched.doc);
  if (problem !== undefined) return invalidRequest(problem);
  const written = ctx.store.write(id, patched.doc);
  const prefer = (req.headers.prefer ?? '').toLowerCase();
  if (/(^|[,;\s])return=representation\b/.test(prefer)) {
    const reply = resourceReply(200, written, ctx, false);
    reply.headers['preference-applied'] = 'return=representation';
    return reply;
  }
  return emptyReply(204);
}

export function handleApiRequest(ctx: ApiContext, req: ApiRequest): Reply {
  const authProblem = checkAuth(ctx, req.headers);
  if (authProblem !== undefined) return authProblem;
  const route = matchRoute(req.url.pathname);
  if (route === undefined) return errorReply(404, 'itemNotFound', `There is no resource at ${req.url.pathname}.`);
  if (route.kind === 'collection') {
    return req.method === 'GET'
      ? listReferrals(ctx.store, req.url.searchParams, ctx.origin)
      : methodNotAllowed(req.method, 'GET');
  }
  switch (req.method) {
    case 'GET':
      return getReferral(ctx, route.id);
    case 'PUT':
      return putReferral(ctx, route.id, req);
    case 'PATCH':
      return patchReferral(ctx, route.id, req);
    default:
      return methodNotAllowed(req.method, 'GET, PUT, PATCH');
  }
}
