/** URL layout of the Referrals API (docs/partner-center-api.md#base-url-and-endpoints). */

export const BASE_PATH = '/v1.0/engagements/referrals';

export type Route = { kind: 'collection' } | { kind: 'item'; id: string };

export function matchRoute(pathname: string): Route | undefined {
  if (pathname === BASE_PATH) return { kind: 'collection' };
  if (!pathname.startsWith(`${BASE_PATH}/`)) return undefined;
  const rest = pathname.slice(BASE_PATH.length + 1);
  if (rest === '' || rest.includes('/')) return undefined;
  try {
    return { kind: 'item', id: decodeURIComponent(rest) };
  } catch {
    return undefined;
  }
}

/** The referral a request addresses, if any (for recording and fault matching). */
export function referralIdOf(pathname: string): string | undefined {
  const route = matchRoute(pathname);
  return route?.kind === 'item' ? route.id : undefined;
}
