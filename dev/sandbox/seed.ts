/**
 * Sample referrals for the sandbox. Bodies follow the reference's JSON
 * (§3.1 and the PUT page) and deliberately carry fields the app does not know:
 * `partnerRole`, `solutionAreas`, `acceptedDateTime`, `attributes`,
 * `details.requirements.additionalRequirements`, `customerProfile.ids`,
 * `address.region` and nested custom objects. A full-replace PUT that drops
 * any of them erases them from the store, which is how tests detect data loss.
 */
import { randomUUID } from 'node:crypto';
import { deepClone, type StoredReferral } from './json.js';
import { utcNow7 } from './time.js';

export type { StoredReferral } from './json.js';

/** Fixed ids of the seeded referrals, by state. */
export const SEED_IDS = {
  newPending: '3f2b8c1e-7a4d-4e9b-b1c2-5d6e7f8a9b01',
  newReceived: '4a3c9d2f-8b5e-4fa0-82d3-6e7f8a9b0c12',
  activeAccepted: '5b4d0e3a-9c6f-4a1b-93e4-7f8a9b0c1d23',
  closedWon: '6c5e1f4b-ad70-4b2c-a4f5-8a9b0c1d2e34',
  closedLost: '7d6f2a5c-be81-4c3d-b506-9b0c1d2e3f45',
  closedDeclined: '8e7a3b6d-cf92-4d4e-8617-ac1d2e3f4a56',
  closedExpired: '9f8b4c7e-d0a3-4e5f-9728-bd2e3f4a5b67',
  /** Active with details: null and no optional extras: the "create details" path (§4.6). */
  activeSparse: 'a09c5d8f-e1b4-4f60-a839-ce3f4a5b6c78',
  /** Active/Error: a state the transition table does not know; writes are refused (§6). */
  unknownState: 'b1ad6e9a-f2c5-4071-b94a-df4a5b6c7d89',
} as const;

export type SeedName = keyof typeof SEED_IDS;

interface Person {
  firstName: string;
  lastName: string;
  phoneNumber: string;
  email: string;
  locale?: string;
}

function member(person: Person): Record<string, unknown> {
  return {
    contactPreference: { locale: person.locale ?? 'en-us', disableNotifications: false },
    firstName: person.firstName,
    lastName: person.lastName,
    phoneNumber: person.phoneNumber,
    email: person.email,
  };
}

const MICROSOFT_SELLER = member({
  firstName: 'John',
  lastName: 'Doe',
  phoneNumber: '1231231234',
  email: 'john.doe@microsoft.com',
});

const PARTNER_ORG = {
  organizationId: '7d23e5ca-19dc-4eaa-aac8-5e6b559f0d1d',
  organizationName: 'Contoso Company',
};

function requirements(
  industry: string,
  product: string,
  service: string,
  solution: string,
  solutionName: string,
): Record<string, unknown> {
  return {
    industries: [{ id: industry }],
    products: [{ id: product }],
    services: [{ id: service }],
    solutions: [{ name: solutionName, type: 'Category', id: solution }],
    additionalRequirements: {
      iot: {},
      attributes: [{ id: 'HaveNotDecided', type: 'CustomerMarketplaceIntent' }],
    },
  };
}

const SEED: readonly StoredReferral[] = [
  {
    id: SEED_IDS.newPending,
    engagementId: 'c0e1f2a3-0001-4b5c-8d9e-0f1a2b3c4d01',
    ...PARTNER_ORG,
    name: 'Fabrikam supply chain modernisation',
    externalReferenceId: null,
    createdDateTime: '2026-11-02T09:15:00.1234567Z',
    updatedDateTime: '2026-11-02T09:15:00.1234567Z',
    expirationDateTime: '2026-11-16T09:15:00Z',
    status: 'New',
    substatus: 'Pending',
    statusReason: '',
    qualification: 'SalesQualified',
    type: 'Independent',
    direction: 'Incoming',
    target: [{ type: 'BusinessProfileLocation', id: '01e2abcd-52b0-4af3-a3ae-1fd1530b3563' }],
    customerProfile: {
      name: 'Fabrikam Customer Inc',
      address: {
        addressLine1: 'One Microsoft Way',
        addressLine2: '34',
        city: 'Redmond',
        state: 'WA',
        postalCode: '98052',
        country: 'US',
        region: 'North America',
      },
      size: '10to50employees',
      team: [
        member({ firstName: 'Sue', lastName: 'Smith', phoneNumber: '1234567890', email: 'sue.smith@fabrikam.com' }),
        member({ firstName: 'Joe', lastName: 'Hansen', phoneNumber: '4035698759', email: 'joe.hansen@fabrikam.com' }),
      ],
      ids: [],
    },
    consent: {
      consentToToShareInfoWithOthers: true,
      consentToContact: true,
      consentToMicrosoftToContactSpecificPartners: true,
      consentToShareReferralWithMicrosoftSellers: true,
    },
    details: {
      notes: 'Customer is looking to leverage Dynamics 365 to manage their supply chain.',
      dealValue: 50000,
      currency: 'USD',
      closingDateTime: '2026-12-15T00:00:00Z',
      requirements: requirements(
        'Manufacturing',
        'Dynamics365Enterprise',
        'DeploymentOrMigration',
        'Dynamics365forFieldService',
        'Dynamics 365 for Field Service',
      ),
    },
    team: [MICROSOFT_SELLER],
    inviteContext: {
      notes: 'Hi Contoso, hoping you can help this customer. Thanks, John @ Microsoft',
      invitedBy: { organizationId: 'msft', organizationName: 'Microsoft' },
    },
    partnerRole: 'SolutionDesign',
    solutionAreas: [{ id: 'BusinessApplications', plays: [{ id: 'ERPTransformation', name: 'ERP transformation' }] }],
    attributes: { objectType: 'Referral' },
  },
  {
    id: SEED_IDS.newReceived,
    engagementId: 'c0e1f2a3-0002-4b5c-8d9e-0f1a2b3c4d02',
    ...PARTNER_ORG,
    name: 'Northwind Traders Teams rollout',
    externalReferenceId: 'crm-lead-0002',
    createdDateTime: '2026-10-28T14:03:27.5021934Z',
    updatedDateTime: '2026-10-29T08:41:10.0071239Z',
    expirationDateTime: '2026-11-11T14:03:27Z',
    status: 'New',
    substatus: 'Received',
    statusReason: 'Partner has viewed the lead',
    qualification: 'MarketingQualified',
    type: 'Independent',
    direction: 'Incoming',
    target: [{ type: 'BusinessProfileLocation', id: '01e2abcd-52b0-4af3-a3ae-1fd1530b3563' }],
    customerProfile: {
      name: 'Northwind Traders',
      address: {
        addressLine1: '12 Harbour Street',
        addressLine2: '',
        city: 'Sydney',
        state: 'NSW',
        postalCode: '2000',
        country: 'AU',
        region: 'Asia Pacific',
      },
      size: '251to1000employees',
      team: [
        member({
          firstName: 'Mia',
          lastName: 'Wong',
          phoneNumber: '+61 2 5550 1234',
          email: 'mia.wong@northwind.example',
          locale: 'en-AU',
        }),
      ],
      ids: { duns: '123456789', external: 'NW-0042' },
    },
    consent: {
      consentToToShareInfoWithOthers: false,
      consentToContact: true,
      consentToMicrosoftToContactSpecificPartners: false,
    },
    details: {
      notes: 'Wants help deploying Teams Phone across 6 offices.',
      dealValue: 18250.75,
      currency: 'AUD',
      closingDateTime: '2027-01-31T00:00:00Z',
      requirements: requirements(
        'Retail & Consumer Goods',
        'Teams',
        'DeploymentOrMigration',
        'CloudVoice',
        'Cloud Voice',
      ),
    },
    team: [MICROSOFT_SELLER],
    inviteContext: {
      notes: 'Marketing-qualified lead from the Teams Phone campaign.',
      invitedBy: { organizationId: 'msft', organizationName: 'Microsoft' },
    },
    referralSource: 'Campaign',
    customAttributes: { crmSync: { lastSyncedBy: 'connector', version: 3 }, tags: ['fy26', 'voice'] },
  },
  {
    id: SEED_IDS.activeAccepted,
    engagementId: 'c0e1f2a3-0003-4b5c-8d9e-0f1a2b3c4d03',
    ...PARTNER_ORG,
    name: 'Tailspin Toys Azure migration',
    externalReferenceId: 'crm-opp-0003',
    createdDateTime: '2026-09-14T10:00:00.0000000Z',
    updatedDateTime: '2026-10-01T16:22:45.9948636Z',
    acceptedDateTime: '2026-09-15T07:30:12.3456789Z',
    expirationDateTime: null,
    status: 'Active',
    substatus: 'Accepted',
    statusReason: 'Discovery workshop booked',
    qualification: 'SalesQualified',
    type: 'Shared',
    direction: 'Incoming',
    target: [{ type: 'SolutionProfile', id: 'SOL-34104-EBB' }],
    customerProfile: {
      name: 'Tailspin Toys GmbH',
      address: {
        addressLine1: 'Musterstraße 5',
        addressLine2: 'Etage 3',
        city: 'München',
        state: 'BY',
        postalCode: '80331',
        country: 'DE',
        region: 'Europe',
      },
      size: '1001to5000employees',
      team: [
        member({
          firstName: 'Jürgen',
          lastName: 'Müller',
          phoneNumber: '+49 89 5550 0100',
          email: 'juergen.mueller@tailspin.example',
          locale: 'de-DE',
        }),
      ],
      ids: {},
    },
    consent: {
      consentToToShareInfoWithOthers: true,
      consentToContact: true,
      consentToMicrosoftToContactSpecificPartners: true,
      consentToShareReferralWithMicrosoftSellers: true,
    },
    details: {
      notes: 'Lift-and-shift of 120 VMs, then modernise the order system.',
      dealValue: 480000,
      currency: 'EUR',
      closingDateTime: '2027-03-31T00:00:00Z',
      requirements: requirements(
        'Manufacturing',
        'Azure',
        'ConsultingAndProfessional',
        'CloudMigration',
        'Cloud Migration',
      ),
      salesStage: { name: 'Developed', probability: 40 },
    },
    team: [
      member({ firstName: 'Ana', lastName: 'Silva', phoneNumber: '5550001111', email: 'ana.silva@contoso.example' }),
    ],
    inviteContext: {
      notes: 'Co-sell with the Azure specialist team.',
      invitedBy: { organizationId: 'msft', organizationName: 'Microsoft' },
    },
    partnerRole: 'DeploymentServices',
    solutionAreas: [
      { id: 'AzureInfrastructure', plays: [{ id: 'MigrateAndModernize', name: 'Migrate and modernize' }] },
    ],
    attributes: { objectType: 'Referral' },
  },
  {
    id: SEED_IDS.closedWon,
    engagementId: 'c0e1f2a3-0004-4b5c-8d9e-0f1a2b3c4d04',
    ...PARTNER_ORG,
    name: 'Contoso Customer Inc field service',
    externalReferenceId: 'crm-opp-0004',
    createdDateTime: '2026-06-01T08:00:00.1000000Z',
    updatedDateTime: '2026-08-20T12:12:12.1212121Z',
    acceptedDateTime: '2026-06-02T09:00:00.2000000Z',
    expirationDateTime: null,
    status: 'Closed',
    substatus: 'Won',
    statusReason: 'Customer engagement was a success!',
    qualification: 'SalesQualified',
    type: 'Independent',
    direction: 'Incoming',
    target: [{ type: 'BusinessProfileLocation', id: '01e2abcd-52b0-4af3-a3ae-1fd1530b3563' }],
    customerProfile: {
      name: 'Contoso Customer Inc',
      address: {
        addressLine1: 'One Microsoft Way',
        addressLine2: '34',
        city: 'Redmond',
        state: 'WA',
        postalCode: '98052',
        country: 'US',
      },
      size: '10to50employees',
      team: [
        member({ firstName: 'Sue', lastName: 'Smith', phoneNumber: '1234567890', email: 'sue.smith@contoso.com' }),
      ],
      ids: [],
    },
    consent: { consentToToShareInfoWithOthers: true, consentToContact: true },
    details: {
      notes: 'Signed a 3-year Field Service agreement.',
      dealValue: 50000,
      currency: 'USD',
      closingDateTime: '2026-08-15T00:00:00Z',
      requirements: requirements(
        'Manufacturing',
        'Dynamics365Enterprise',
        'DeploymentOrMigration',
        'Dynamics365forFieldService',
        'Dynamics 365 for Field Service',
      ),
    },
    team: [MICROSOFT_SELLER],
    inviteContext: {
      notes: 'Hi ABC Partner, hoping you can help this customer. Thanks, John @ Microsoft',
      invitedBy: { organizationId: 'msft' },
    },
    dealRegistration: { status: 'Approved', registeredDateTime: '2026-08-16T10:00:00.0000000Z' },
  },
  {
    id: SEED_IDS.closedLost,
    engagementId: 'c0e1f2a3-0005-4b5c-8d9e-0f1a2b3c4d05',
    ...PARTNER_ORG,
    name: 'Woodgrove Bank analytics',
    externalReferenceId: 'crm-opp-0005',
    createdDateTime: '2026-05-10T11:11:11.1111111Z',
    updatedDateTime: '2026-07-01T09:09:09.0909090Z',
    acceptedDateTime: '2026-05-11T08:00:00.0000000Z',
    expirationDateTime: null,
    status: 'Closed',
    substatus: 'Lost',
    statusReason: 'Customer chose a competitor',
    qualification: 'SalesQualified',
    type: 'Shared',
    direction: 'Incoming',
    target: [{ type: 'SolutionProfile', id: 'SOL-15974-MQF' }],
    customerProfile: {
      name: 'Woodgrove Bank',
      address: {
        addressLine1: '1 Bank Plaza',
        addressLine2: '',
        city: 'Toronto',
        state: 'ON',
        postalCode: 'M5J 2N1',
        country: 'CA',
      },
      size: 'Morethan20000employees',
      team: [
        member({ firstName: 'Li', lastName: 'Chen', phoneNumber: '4165550199', email: 'li.chen@woodgrove.example' }),
      ],
      ids: { external: 'WG-77' },
    },
    consent: { consentToToShareInfoWithOthers: true, consentToContact: false },
    details: {
      notes: 'Lost on price.',
      dealValue: 1250000,
      currency: 'CAD',
      closingDateTime: '2026-06-30T00:00:00Z',
      requirements: requirements(
        'Financial Services',
        'PowerBI',
        'ConsultingAndProfessional',
        'EnterpriseBusinessIntelligence',
        'Enterprise Business Intelligence',
      ),
    },
    team: [MICROSOFT_SELLER],
    inviteContext: { notes: '', invitedBy: { organizationId: 'msft', organizationName: 'Microsoft' } },
  },
  {
    id: SEED_IDS.closedDeclined,
    engagementId: 'c0e1f2a3-0006-4b5c-8d9e-0f1a2b3c4d06',
    ...PARTNER_ORG,
    name: 'Adventure Works surface devices',
    externalReferenceId: null,
    createdDateTime: '2026-07-07T07:07:07.7070707Z',
    updatedDateTime: '2026-07-08T08:08:08.8080808Z',
    expirationDateTime: '2026-07-21T07:07:07Z',
    status: 'Closed',
    substatus: 'Declined',
    statusReason: 'Outside our service area',
    qualification: 'MarketingQualified',
    type: 'Independent',
    direction: 'Incoming',
    target: [{ type: 'BusinessProfileLocation', id: '01e2abcd-52b0-4af3-a3ae-1fd1530b3563' }],
    customerProfile: {
      name: 'Adventure Works Cycles',
      address: {
        addressLine1: '8 Rue de la Paix',
        addressLine2: '',
        city: 'Paris',
        state: '',
        postalCode: '75002',
        country: 'FR',
      },
      size: '51to250employees',
      team: [
        member({
          firstName: 'Claire',
          lastName: 'Martin',
          phoneNumber: '+33 1 55 50 12 34',
          email: 'claire.martin@adventure-works.example',
          locale: 'fr-FR',
        }),
      ],
      ids: [],
    },
    consent: { consentToToShareInfoWithOthers: true, consentToContact: true },
    details: {
      notes: '',
      dealValue: 0,
      currency: 'EUR',
      closingDateTime: null,
      requirements: requirements(
        'Travel & Transportation',
        'Surface',
        'Hardware',
        'MobileApplications',
        'Mobile Applications',
      ),
    },
    team: [MICROSOFT_SELLER],
    inviteContext: { notes: '', invitedBy: { organizationId: 'msft', organizationName: 'Microsoft' } },
  },
  {
    id: SEED_IDS.closedExpired,
    engagementId: 'c0e1f2a3-0007-4b5c-8d9e-0f1a2b3c4d07',
    ...PARTNER_ORG,
    name: 'Litware security assessment',
    externalReferenceId: null,
    createdDateTime: '2026-08-01T00:00:00.0000001Z',
    updatedDateTime: '2026-08-15T00:00:05.5000000Z',
    expirationDateTime: '2026-08-15T00:00:00Z',
    status: 'Closed',
    substatus: 'Expired',
    statusReason: 'Expired by the system after 14 days without a response',
    qualification: 'SalesQualified',
    type: 'Independent',
    direction: 'Incoming',
    target: [{ type: 'BusinessProfileLocation', id: '01e2abcd-52b0-4af3-a3ae-1fd1530b3563' }],
    customerProfile: {
      name: 'Litware Inc',
      address: {
        addressLine1: '500 Main St',
        addressLine2: 'Suite 200',
        city: 'Austin',
        state: 'TX',
        postalCode: '73301',
        country: 'US',
      },
      size: '1to9employees',
      team: [
        member({ firstName: 'Raj', lastName: 'Patel', phoneNumber: '5125550100', email: 'raj.patel@litware.example' }),
      ],
      ids: [],
    },
    consent: { consentToToShareInfoWithOthers: true, consentToContact: true },
    details: {
      notes: 'Needs a Defender rollout and an identity review.',
      dealValue: 9999.99,
      currency: 'USD',
      closingDateTime: '2026-10-01T00:00:00Z',
      requirements: requirements(
        'Services',
        'EnterpriseMobilityAndSecurity',
        'ManagedServices',
        'ThreatProtection',
        'Threat Protection',
      ),
    },
    team: [MICROSOFT_SELLER],
    inviteContext: { notes: '', invitedBy: { organizationId: 'msft', organizationName: 'Microsoft' } },
  },
  {
    id: SEED_IDS.activeSparse,
    engagementId: 'c0e1f2a3-0008-4b5c-8d9e-0f1a2b3c4d08',
    name: 'Outgoing deal without details',
    createdDateTime: '2026-10-10T10:10:10.1010101Z',
    updatedDateTime: '2026-10-10T10:10:10.1010101Z',
    status: 'Active',
    substatus: 'Accepted',
    qualification: 'None',
    type: 'Independent',
    direction: 'Outgoing',
    target: [],
    customerProfile: {
      name: 'Proseware Ltd',
      address: { addressLine1: '1 High St', city: 'Leeds', postalCode: 'LS1 1AA', country: 'GB' },
      team: [],
    },
    consent: { consentToToShareInfoWithOthers: false, consentToContact: false },
    details: null,
    team: [],
  },
  {
    id: SEED_IDS.unknownState,
    engagementId: 'c0e1f2a3-0009-4b5c-8d9e-0f1a2b3c4d09',
    ...PARTNER_ORG,
    name: 'Referral in an undocumented state',
    externalReferenceId: 'crm-opp-0009',
    createdDateTime: '2026-09-09T09:09:09.9999999Z',
    updatedDateTime: '2026-09-10T09:09:09.9999999Z',
    status: 'Active',
    substatus: 'Error',
    statusReason: 'Closed as error in Partner Center',
    qualification: 'SalesQualified',
    type: 'Independent',
    direction: 'Incoming',
    target: [{ type: 'BusinessProfileLocation', id: '01e2abcd-52b0-4af3-a3ae-1fd1530b3563' }],
    customerProfile: {
      name: 'Blue Yonder Airlines',
      address: {
        addressLine1: '2 Airport Rd',
        addressLine2: '',
        city: 'Seattle',
        state: 'WA',
        postalCode: '98158',
        country: 'US',
      },
      size: '5001to10000employees',
      team: [],
      ids: [],
    },
    consent: { consentToToShareInfoWithOthers: true, consentToContact: true },
    details: {
      notes: '',
      dealValue: 75000,
      currency: 'USD',
      closingDateTime: '2026-12-01T00:00:00Z',
      requirements: requirements(
        'Travel & Transportation',
        'Azure',
        'Integration',
        'ApplicationIntegration',
        'Application Integration',
      ),
    },
    team: [MICROSOFT_SELLER],
    inviteContext: { notes: '', invitedBy: { organizationId: 'msft', organizationName: 'Microsoft' } },
  },
];

/** Fresh deep copies of every seeded referral (without eTag; the store assigns one). */
export function seedReferrals(): StoredReferral[] {
  return SEED.map((referral) => deepClone(referral));
}

/** A fresh deep copy of one seeded referral. */
export function seedReferral(name: SeedName): StoredReferral {
  const found = SEED.find((referral) => referral.id === SEED_IDS[name]);
  if (found === undefined) throw new Error(`No seeded referral named ${name}`);
  return deepClone(found);
}

/**
 * A new full New/Pending referral with random `id` and `engagementId`.
 * `overrides` are shallow-merged over the top level (deep-copied first), so
 * `{ details: … }` replaces the whole details object.
 */
export function makeReferral(overrides: Record<string, unknown> = {}): StoredReferral {
  const now = utcNow7();
  const base = seedReferral('newPending');
  const referral: Record<string, unknown> = {
    ...base,
    id: randomUUID(),
    engagementId: randomUUID(),
    name: 'Generated test referral',
    createdDateTime: now,
    updatedDateTime: now,
    ...deepClone(overrides),
  };
  const id = referral.id;
  if (typeof id !== 'string' || id === '') throw new Error('makeReferral: id must be a non-empty string');
  return { ...referral, id };
}
