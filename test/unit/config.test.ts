import { describe, expect, it } from 'vitest';
import { isLoopbackHost, parseConfig } from '../../shared/config.js';

describe('parseConfig', () => {
  it('defaults to the real Partner Center host over https', () => {
    const result = parseConfig({ IDEMPOTENCY_STORE: 'memory' });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.config.partnerCenter).toMatchObject({
      origin: 'https://api.partner.microsoft.com',
      basePath: '',
      loopback: false,
      scope: 'https://api.partner.microsoft.com/.default',
    });
    expect(result.config.retry.budgetMs).toBeLessThan(120_000);
    expect(result.config.identity.clientId).toBeUndefined();
  });

  it.each(['http://127.0.0.1:7072', 'http://localhost:1234/pc/', 'http://[::1]:8080', 'https://pc.example.test'])(
    'accepts %s',
    (url) => {
      expect(parseConfig({ PARTNER_CENTER_BASE_URL: url, IDEMPOTENCY_STORE: 'memory' }).ok).toBe(true);
    },
  );

  // Plain http is allowed only towards loopback; the check is string-based (no net.isIP at load).
  describe('loopback hosts', () => {
    const loopbackOf = (url: string) => {
      const result = parseConfig({ PARTNER_CENTER_BASE_URL: url, IDEMPOTENCY_STORE: 'memory' });
      return result.ok ? result.config.partnerCenter.loopback : undefined;
    };

    it.each([
      'http://127.0.0.1:7072',
      'http://127.1.2.3',
      'http://127.255.255.254:80/pc',
      'http://localhost:1234',
      'http://LOCALHOST:1234',
      'http://[::1]:8080',
      'http://[0:0:0:0:0:0:0:1]:8080',
      // WHATWG URL canonicalizes these to 127.0.0.1.
      'http://127.1',
      'http://2130706433',
      'http://0x7f.0.0.1',
    ])('%s is loopback (http allowed)', (url) => {
      expect(loopbackOf(url)).toBe(true);
    });

    it.each([
      'http://127.0.0.1.nip.io',
      'http://127.evil.example',
      'http://localhost.example.test',
      'http://my-localhost',
      'http://128.0.0.1',
      'http://10.127.0.1',
      'http://[::2]',
      'http://[::ffff:127.0.0.1]',
      'http://[fe80::1]',
      'http://0.0.0.0',
    ])('%s is not loopback (http refused)', (url) => {
      const result = parseConfig({ PARTNER_CENTER_BASE_URL: url, IDEMPOTENCY_STORE: 'memory' });
      expect(result.ok).toBe(false);
      expect(result.ok ? '' : result.problems.join()).toContain('must use https');
    });

    it.each([
      ['127.0.0.1', true],
      ['127.9.8.7', true],
      ['[::1]', true],
      ['::1', true],
      ['localhost', true],
      ['127.0.0.256', false],
      ['127.0.0', false],
      ['127.0.0.1.5', false],
      ['127.00.0.1', false],
      ['127.0.0.-1', false],
      ['127.0.0.1a', false],
      ['', false],
      ['[::1', true],
    ])('isLoopbackHost(%j) is %s, as with net.isIP', (host, expected) => {
      expect(isLoopbackHost(host)).toBe(expected);
    });

    it('https to a lookalike is accepted and not marked loopback', () => {
      expect(loopbackOf('https://127.0.0.1.nip.io')).toBe(false);
      expect(loopbackOf('https://localhost.example.test')).toBe(false);
    });
  });

  it('keeps a path prefix without a trailing slash', () => {
    const result = parseConfig({ PARTNER_CENTER_BASE_URL: 'http://localhost:1234/pc/', IDEMPOTENCY_STORE: 'memory' });
    expect(result.ok && result.config.partnerCenter.basePath).toBe('/pc');
  });

  it.each([
    ['http://api.partner.microsoft.com', 'must use https'],
    ['http://10.0.0.5:8080', 'must use https'],
    ['ftp://127.0.0.1', 'must use https'],
    ['not a url', 'is not a URL'],
    ['https://user:pw@api.partner.microsoft.com', 'must not carry'],
  ])('refuses %s with a clear message', (url, message) => {
    const result = parseConfig({ PARTNER_CENTER_BASE_URL: url });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems.join()).toContain(message);
    expect(result.problems.join()).not.toContain('pw@');
  });

  it('validates numeric settings and reports each problem', () => {
    const result = parseConfig({
      UPSTREAM_BUDGET_MS: '500000',
      UPSTREAM_MAX_RETRIES: 'three',
      IDEMPOTENCY_STORE: 'memory',
    });
    expect(result).toEqual({
      ok: false,
      problems: [
        expect.stringContaining('UPSTREAM_BUDGET_MS must be an integer from 1000 to 110000'),
        expect.stringContaining('UPSTREAM_MAX_RETRIES must be an integer'),
      ],
    });
  });

  it('passes AZURE_CLIENT_ID through for a user-assigned identity', () => {
    const result = parseConfig({
      AZURE_CLIENT_ID: ' 11111111-2222-3333-4444-555555555555 ',
      IDEMPOTENCY_STORE: 'memory',
    });
    expect(result.ok && result.config.identity.clientId).toBe('11111111-2222-3333-4444-555555555555');
  });

  describe('app-user with a federated credential needs the user-assigned identity', () => {
    const appUser = {
      PARTNER_CENTER_AUTH: 'app-user',
      KEY_VAULT_URL: 'https://kv-example.vault.azure.net/',
      PARTNER_TENANT_ID: '7d23e5ca-19dc-4eaa-aac8-5e6b559f0d1d',
      APP_REGISTRATION_CLIENT_ID: '0b1c2d3e-4f50-4617-8a9b-0c1d2e3f4a5b',
      IDEMPOTENCY_STORE: 'memory',
    };

    it('without AZURE_CLIENT_ID (a system-assigned identity cannot be a federated credential): a problem', () => {
      expect(parseConfig(appUser)).toEqual({
        ok: false,
        problems: [
          expect.stringContaining('AZURE_CLIENT_ID (the client id of the user-assigned managed identity) is required'),
        ],
      });
    });

    it('with AZURE_CLIENT_ID, or with another client authentication: accepted', () => {
      expect(parseConfig({ ...appUser, AZURE_CLIENT_ID: '11111111-2222-3333-4444-555555555555' }).ok).toBe(true);
      expect(parseConfig({ ...appUser, APP_CLIENT_AUTH: 'none' }).ok).toBe(true);
    });
  });
});

describe('telemetry settings', () => {
  const KEY =
    'InstrumentationKey=00000000-0000-0000-0000-000000000001;IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/';
  const base = { IDEMPOTENCY_STORE: 'memory' };

  it('is off without a connection string', () => {
    const result = parseConfig(base);
    expect(result.ok && result.config.telemetry).toBeUndefined();
  });

  it('uses the instrumentation key alone without an authentication string', () => {
    const result = parseConfig({ ...base, APPLICATIONINSIGHTS_CONNECTION_STRING: KEY });
    expect(result.ok && result.config.telemetry).toEqual({ connectionString: KEY, ingestion: { auth: 'key' } });
  });

  it.each([
    ['Authorization=AAD', undefined],
    ['ClientId=11111111-2222-3333-4444-555555555555;Authorization=AAD', '11111111-2222-3333-4444-555555555555'],
    ['authorization=aad; clientid=abc', 'abc'],
  ])('authenticates ingestion with Entra ID for %s', (authentication, clientId) => {
    const result = parseConfig({
      ...base,
      APPLICATIONINSIGHTS_CONNECTION_STRING: KEY,
      APPLICATIONINSIGHTS_AUTHENTICATION_STRING: authentication,
    });
    expect(result.ok && result.config.telemetry?.ingestion).toEqual({ auth: 'entra', clientId });
  });

  it.each([
    [
      { APPLICATIONINSIGHTS_CONNECTION_STRING: 'IngestionEndpoint=https://x.example/' },
      'must contain InstrumentationKey',
    ],
    [
      { APPLICATIONINSIGHTS_CONNECTION_STRING: KEY, APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=Key' },
      'Authorization=AAD',
    ],
    [
      {
        APPLICATIONINSIGHTS_CONNECTION_STRING: KEY,
        APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD;Secret=x',
      },
      'Authorization=AAD',
    ],
    [
      { APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD' },
      'APPLICATIONINSIGHTS_CONNECTION_STRING is not',
    ],
  ])('refuses %o without echoing it', (env, message) => {
    const result = parseConfig({ ...base, ...env });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems.join('\n')).toContain(message);
    expect(result.problems.join('\n')).not.toContain('00000000-0000-0000-0000-000000000001');
  });
});

describe('refresh-token keep-alive and write-back settings', () => {
  const APP_USER = {
    IDEMPOTENCY_STORE: 'memory',
    PARTNER_CENTER_AUTH: 'app-user',
    KEY_VAULT_URL: 'https://vault.example.test',
    PARTNER_TENANT_ID: 'tenant',
    APP_REGISTRATION_CLIENT_ID: 'app',
    AZURE_CLIENT_ID: '00000000-0000-4000-8000-00000000000a',
  };

  it('writes back at most every 12 hours by default; 0 writes every rotation', () => {
    const byDefault = parseConfig(APP_USER);
    expect(byDefault.ok && byDefault.config.auth).toMatchObject({ writeBackIntervalMs: 12 * 3_600_000 });
    const always = parseConfig({ ...APP_USER, REFRESH_TOKEN_WRITE_INTERVAL_MINUTES: '0' });
    expect(always.ok && always.config.auth).toMatchObject({ writeBackIntervalMs: 0 });
  });

  it.each(['-1', '10081', '1.5', 'often'])('refuses REFRESH_TOKEN_WRITE_INTERVAL_MINUTES=%s (0 to 7 days)', (value) => {
    const result = parseConfig({ ...APP_USER, REFRESH_TOKEN_WRITE_INTERVAL_MINUTES: value });
    expect(result.ok).toBe(false);
    if (!result.ok)
      expect(result.problems.join()).toMatch(/REFRESH_TOKEN_WRITE_INTERVAL_MINUTES must be an integer from 0 to 10080/);
  });

  it('accepts a six-field NCRONTAB schedule and refuses anything else, naming the problem', () => {
    expect(parseConfig({ ...APP_USER, REFRESH_TOKEN_RENEWAL_SCHEDULE: '0 30 4 * * Sun' }).ok).toBe(true);
    const fiveFields = parseConfig({ ...APP_USER, REFRESH_TOKEN_RENEWAL_SCHEDULE: '0 */12 * * *' });
    expect(fiveFields.ok).toBe(false);
    if (!fiveFields.ok) expect(fiveFields.problems.join()).toMatch(/REFRESH_TOKEN_RENEWAL_SCHEDULE: .*six fields/);
  });
});

describe('PARTNER_CENTER_WRITE_METHOD (#14 item 3)', () => {
  const parse = (value: string | undefined) =>
    parseConfig({ IDEMPOTENCY_STORE: 'memory', PARTNER_CENTER_WRITE_METHOD: value });

  it("unset or blank: put, today's behaviour", () => {
    for (const value of [undefined, '', '  ']) {
      const result = parse(value);
      expect(result.ok && result.config.partnerCenter.writeMethod).toBe('put');
    }
  });

  it('put or patch, as written', () => {
    for (const value of ['put', 'patch', ' patch ']) {
      const result = parse(value);
      expect(result.ok && result.config.partnerCenter.writeMethod).toBe(value.trim());
    }
  });

  it.each(['PATCH', 'Put', 'merge', 'post', 'json-patch'])('%s fails closed: a problem naming the setting', (value) => {
    expect(parse(value)).toEqual({ ok: false, problems: ['PARTNER_CENTER_WRITE_METHOD must be put or patch'] });
  });
});

describe('WEBHOOK_SECRETS (#11 item 2)', () => {
  const secret = `whsec_${Buffer.alloc(32, 3).toString('base64')}`;
  const parse = (value: string | undefined) => parseConfig({ IDEMPOTENCY_STORE: 'memory', WEBHOOK_SECRETS: value });

  it('unset or empty: signatures are off', () => {
    for (const value of [undefined, '']) {
      const result = parse(value);
      expect(result.ok && result.config.inbound.webhookSecrets).toEqual([]);
    }
  });

  it('reads a list separated by spaces or commas', () => {
    const other = `whsec_${Buffer.alloc(24, 4).toString('base64')}`;
    const result = parse(` ${secret},${other}\n`);
    expect(result.ok && result.config.inbound.webhookSecrets).toEqual([secret, other]);
  });

  it.each([',', ' ', ' , ', '\n', ',,,'])(
    'set but holding no secret (%j) is a configuration error, never "off"',
    (value) => {
      const result = parse(value);
      expect(result.ok).toBe(false);
      expect(!result.ok && result.problems).toEqual([
        expect.stringContaining('WEBHOOK_SECRETS is set but holds no secret'),
      ]);
    },
  );

  it.each([
    ['no whsec_ prefix', Buffer.alloc(32, 3).toString('base64')],
    ['not base64', 'whsec_!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!'],
    ['the URL-safe alphabet', `whsec_${Buffer.alloc(32, 0xfb).toString('base64url')}`],
    ['too short', `whsec_${Buffer.alloc(16, 3).toString('base64')}`],
  ])('a malformed entry (%s) is a configuration error that never echoes it', (_what, bad) => {
    const result = parse(`${secret} ${bad}`);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.problems).toEqual([expect.stringContaining('WEBHOOK_SECRETS entry 2')]);
    expect(JSON.stringify(result)).not.toContain(bad);
  });
});

describe('asynchronous delivery settings (#12)', () => {
  const azurite = 'UseDevelopmentStorage=true';
  const problemsOf = (env: Record<string, string>) => {
    const result = parseConfig(env);
    return result.ok ? [] : result.problems;
  };

  it('defaults: synchronous, one day, 30 s to 15 min, polls every 5 s, queue referral-updates', () => {
    const result = parseConfig({ AzureWebJobsStorage: azurite });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.config.delivery).toEqual({
      default: 'sync',
      maxAgeSeconds: 86_400,
      retryMinSeconds: 30,
      retryMaxSeconds: 900,
      pollSeconds: 5,
      queueName: 'referral-updates',
      poisonQueueName: 'referral-updates-poison',
      queue: { connectionString: azurite },
    });
  });

  it('reads every setting', () => {
    const result = parseConfig({
      AzureWebJobsStorage: azurite,
      DEFAULT_DELIVERY: 'async',
      ASYNC_MAX_AGE_SECONDS: '604800',
      ASYNC_RETRY_MIN_SECONDS: '1',
      ASYNC_RETRY_MAX_SECONDS: '1',
      ASYNC_POLL_SECONDS: '600',
      ASYNC_QUEUE_NAME: 'a1-b2',
    });
    expect(result.ok && result.config.delivery).toMatchObject({
      default: 'async',
      maxAgeSeconds: 604_800,
      retryMinSeconds: 1,
      retryMaxSeconds: 1,
      pollSeconds: 600,
      queueName: 'a1-b2',
      poisonQueueName: 'a1-b2-poison',
    });
  });

  it('identity-based: AzureWebJobsStorage__queueServiceUri with the storage client id', () => {
    const result = parseConfig({
      AzureWebJobsStorage__tableServiceUri: 'https://acct.table.core.windows.net',
      AzureWebJobsStorage__queueServiceUri: 'https://acct.queue.core.windows.net/',
      AzureWebJobsStorage__clientId: 'storage-id',
      AZURE_CLIENT_ID: 'app-id',
    });
    expect(result.ok && result.config.delivery.queue).toEqual({
      queueServiceUri: 'https://acct.queue.core.windows.net',
      clientId: 'storage-id',
    });
    expect(problemsOf({ AzureWebJobsStorage__queueServiceUri: 'http://acct.queue.core.windows.net' })).toEqual([
      expect.stringContaining('AzureWebJobsStorage__queueServiceUri must use https'),
    ]);
  });

  it('no queue with the memory store; DEFAULT_DELIVERY=async with it is a problem that says what to set', () => {
    const result = parseConfig({ IDEMPOTENCY_STORE: 'memory', AzureWebJobsStorage: azurite });
    expect(result.ok && result.config.delivery.queue).toBeUndefined();
    const problems = problemsOf({ IDEMPOTENCY_STORE: 'memory', DEFAULT_DELIVERY: 'async' });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/DEFAULT_DELIVERY=async needs IDEMPOTENCY_STORE=table/);
    expect(problems[0]).toMatch(/DEFAULT_DELIVERY=sync/);
  });

  it('DEFAULT_DELIVERY=async without any queue connection is a problem', () => {
    const problems = problemsOf({
      DEFAULT_DELIVERY: 'async',
      AzureWebJobsStorage__tableServiceUri: 'https://acct.table.core.windows.net',
    });
    expect(problems).toEqual([expect.stringContaining('AzureWebJobsStorage__queueServiceUri')]);
  });

  it.each([
    [{ DEFAULT_DELIVERY: 'later' }, 'DEFAULT_DELIVERY must be sync or async'],
    [{ ASYNC_MAX_AGE_SECONDS: '0' }, 'ASYNC_MAX_AGE_SECONDS must be an integer from 1 to 604800'],
    [{ ASYNC_MAX_AGE_SECONDS: '604801' }, 'ASYNC_MAX_AGE_SECONDS must be an integer from 1 to 604800'],
    [{ ASYNC_RETRY_MIN_SECONDS: '3601' }, 'ASYNC_RETRY_MIN_SECONDS must be an integer from 1 to 3600'],
    [{ ASYNC_RETRY_MAX_SECONDS: '86401' }, 'ASYNC_RETRY_MAX_SECONDS must be an integer from 1 to 86400'],
    [{ ASYNC_POLL_SECONDS: '0.5' }, 'ASYNC_POLL_SECONDS must be an integer from 1 to 600'],
    [
      { ASYNC_RETRY_MIN_SECONDS: '60', ASYNC_RETRY_MAX_SECONDS: '59' },
      'ASYNC_RETRY_MIN_SECONDS must not exceed ASYNC_RETRY_MAX_SECONDS',
    ],
  ])('refuses %o', (env, message) => {
    expect(problemsOf({ AzureWebJobsStorage: azurite, ...env })).toEqual([expect.stringContaining(message)]);
  });

  it.each(['Referral-Updates', 'ab', 'a--b', '-ab', 'ab-', 'a_b', 'a'.repeat(57)])(
    'refuses the queue name %s, naming ASYNC_QUEUE_NAME',
    (name) => {
      expect(problemsOf({ AzureWebJobsStorage: azurite, ASYNC_QUEUE_NAME: name })).toEqual([
        expect.stringContaining('ASYNC_QUEUE_NAME must be 3-56'),
      ]);
    },
  );

  it('accepts a 56-character queue name (its poison queue has 63)', () => {
    const name = `q${'0'.repeat(55)}`;
    const result = parseConfig({ AzureWebJobsStorage: azurite, ASYNC_QUEUE_NAME: name });
    expect(result.ok && result.config.delivery.queueName).toBe(name);
  });
});

describe('STAGE_MAP (#14)', () => {
  const base = { IDEMPOTENCY_STORE: 'memory' };
  const stagesOf = (value: string | undefined) => {
    const result = parseConfig({ ...base, STAGE_MAP: value });
    return result.ok ? result.config.inbound.stageMap : result.problems;
  };

  it('unset or blank: no map', () => {
    expect(stagesOf(undefined)).toBeUndefined();
    expect(stagesOf('  ')).toBeUndefined();
  });

  it('a preset, any casing and surrounding spaces', () => {
    expect(stagesOf('salesforce')).toMatchObject({ source: 'salesforce' });
    expect(stagesOf(' HubSpot ')).toMatchObject({ source: 'hubspot' });
    expect(stagesOf('Dynamics365')).toMatchObject({ source: 'dynamics365' });
  });

  it('a JSON object of your own, its entries in order, null kept as "no status change"', () => {
    const map = stagesOf('{"Close Won": "Closed/Won", "Negotiation/Review": "Active", "Needs Analysis": null}');
    expect(map).toMatchObject({
      source: 'custom',
      entries: [
        { stage: 'Close Won', target: { status: 'Closed', substatus: 'Won' } },
        { stage: 'Negotiation/Review', target: { status: 'Active', substatus: 'Accepted' } },
        { stage: 'Needs Analysis', target: null },
      ],
    });
  });

  it('a stage given twice with the very same spelling is named too (JSON.parse would keep the last silently)', () => {
    const result = parseConfig({ ...base, STAGE_MAP: '{"Won": "Won", "Won": "Lost"}' });
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.problems).toEqual([expect.stringMatching(/^STAGE_MAP entry "Won": the same stage as "Won"/)]);
    }
  });

  it('every bad entry is a configuration problem naming it: invalid targets, a stage given twice after normalisation', () => {
    const result = parseConfig({
      ...base,
      STAGE_MAP:
        '{"Closed Won": "Closed/Won", " closed won": "Won", "Qualify": "Active/Won", "Proposal": "Closed", "Lead": "Open", "Won": "Won", "won": "Won"}',
    });
    expect(result).toEqual({
      ok: false,
      problems: [
        'STAGE_MAP entry " closed won": the same stage as "Closed Won" (case and surrounding whitespace are ignored)',
        'STAGE_MAP entry "Qualify": substatus Won belongs to status Closed, not Active',
        'STAGE_MAP entry "Proposal": Closed needs a substatus: Closed/Won, Closed/Lost, Closed/Declined or Closed/Expired',
        'STAGE_MAP entry "Lead": "Open" is not a status (New, Active), a substatus (Pending, Received, Accepted, Won, Lost, Declined, Expired) or Status/Substatus such as Closed/Won',
        'STAGE_MAP entry "won": the same stage as "Won" (case and surrounding whitespace are ignored)',
      ],
    });
  });

  it('anything else is one problem that says what it may be', () => {
    expect(stagesOf('pipedrive')).toEqual([
      'STAGE_MAP must be dynamics365, salesforce, hubspot or a JSON object such as {"Closed Won": "Closed/Won", "Needs Analysis": null}',
    ]);
    expect(stagesOf('{"Closed Won": 1}')).toEqual([
      'STAGE_MAP is not a JSON object of stage names: entry "Closed Won": the target must be a string such as "Closed/Won", or null',
    ]);
    expect(stagesOf('{"Closed Won": "Won",}')).toEqual([
      'STAGE_MAP is not a JSON object of stage names: a stage name (a JSON string) is expected at character 22',
    ]);
    expect(stagesOf('{}')).toEqual(['STAGE_MAP is an empty object: name at least one stage, or remove the setting']);
    expect(stagesOf('{"": "Won"}')).toEqual(['STAGE_MAP entry "": a stage name must not be empty or blank']);
  });

  it('a problem of STAGE_MAP is listed with the others (health: misconfigured)', () => {
    const result = parseConfig({ ...base, STAGE_MAP: '{"X": "Y"}', MAX_BODY_BYTES: '1' });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems).toHaveLength(2);
    expect(result.problems.some((p) => p.startsWith('STAGE_MAP entry "X"'))).toBe(true);
  });
});
