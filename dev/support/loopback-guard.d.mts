export function targetOf(args: unknown[]): string | undefined;
export function isAllowedTarget(host: string | undefined): boolean;
