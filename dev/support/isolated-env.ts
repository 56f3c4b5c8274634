/**
 * The environment for a child process that must stay on loopback (tests, benchmarks, the package's
 * cold-start measurement): the parent's variables minus every one that would point it at a real service
 * or change how it reaches one (managed identity, Azure, Partner Center, telemetry, proxies, preloads).
 */
const SERVICE_SETTING =
  /^(IDENTITY_|MSI_|AZURE_|PARTNER_CENTER_|APPLICATIONINSIGHTS_|APPLICATION_INSIGHTS_|WEBSITE_|OTEL_|UPSTREAM_|RETRY_|CONCURRENCY_)|^(https?_proxy|no_proxy|NODE_OPTIONS)$/i;

export function withoutServiceSettings(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined && !SERVICE_SETTING.test(name)) kept[name] = value;
  }
  return kept;
}
