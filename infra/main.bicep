// The Partner Center referral webhook on Azure Functions Flex Consumption, for `azd up` (docs/deploy.md).
// Shape of Azure-Samples/functions-quickstart-typescript-azd (subscription scope, one resource group, infra/app/*),
// with plain resources instead of registry modules so that every security setting is in this repository and
// checked by test/unit/infra.test.ts.
targetScope = 'subscription'

// ---------------------------------------------------------------------------------------------------------------
// Environment (set by azd)
// ---------------------------------------------------------------------------------------------------------------

@minLength(1)
@maxLength(64)
@description('Name of the azd environment (AZURE_ENV_NAME). Names the resource group and seeds the unique suffix of every resource name.')
param environmentName string

@minLength(1)
@description('Azure region for every resource (AZURE_LOCATION). Only regions that offered Flex Consumption when this list was written (no canary regions); `az functionapp list-flexconsumption-locations` has the current list.')
@allowed([
  'australiaeast'
  'australiasoutheast'
  'brazilsouth'
  'canadacentral'
  'centralindia'
  'centralus'
  'eastasia'
  'eastus'
  'eastus2'
  'francecentral'
  'germanywestcentral'
  'italynorth'
  'japaneast'
  'koreacentral'
  'northcentralus'
  'northeurope'
  'norwayeast'
  'southafricanorth'
  'southcentralus'
  'southeastasia'
  'southindia'
  'spaincentral'
  'swedencentral'
  'uaenorth'
  'uksouth'
  'ukwest'
  'westcentralus'
  'westeurope'
  'westus'
  'westus2'
  'westus3'
])
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Name of the resource group to create. Empty: rg-<environmentName>.')
param resourceGroupName string = ''

@description('Object id of the principal running the deployment (AZURE_PRINCIPAL_ID). Given Key Vault Secrets Officer on the vault as deployerKeyVaultAccess says, so it can run the App+User bootstrap and store the webhook secret. Empty: no role for the deployer.')
param principalId string = ''

@description('Kind of principal in principalId (AZURE_PRINCIPAL_TYPE): User for a person, ServicePrincipal for a pipeline.')
@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
param principalType string = 'User'

@description('Key Vault Secrets Officer on the vault for principalId (to run `npm run auth:bootstrap` and store the webhook secret): auto gives it to a User and not to a pipeline (ServicePrincipal), on and off decide. Off when a separate administrator manages the secrets.')
@allowed([
  'auto'
  'on'
  'off'
])
param deployerKeyVaultAccess string = 'auto'

@description('How the app identity gets secret get and set in app-user mode: custom (a custom role with exactly those two data actions, assignable only in this resource group; the deployer needs Microsoft.Authorization/roleDefinitions/write, as Owner or User Access Administrator have) or builtin (Key Vault Secrets Officer, which can also delete and purge every secret).')
@allowed([
  'custom'
  'builtin'
])
param keyVaultSecretWriterRole string = 'custom'

// ---------------------------------------------------------------------------------------------------------------
// Hosting
// ---------------------------------------------------------------------------------------------------------------

@description('Memory of each Flex Consumption instance, in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Most instances the app scales out to (Flex Consumption allows 1 to 1000). Caps cost and the load put on Partner Center, which publishes no rate limit for referrals: at most about this many times the per-instance HTTP concurrency (a platform default that grows with instanceMemoryMB) events run at once. Microsoft cautions that HTTP apps below 40 can see request failures under bursts; callers retry those (docs/deploy.md#parameters).')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 10

@description('Days Log Analytics keeps the logs and telemetry.')
@minValue(30)
@maxValue(730)
param logRetentionInDays int = 30

@description('Public network access to the Key Vault. Disabled needs a private endpoint and virtual network integration, which this template does not create: the app could then not read its secrets.')
@allowed([
  'Enabled'
  'Disabled'
])
param keyVaultPublicNetworkAccess string = 'Enabled'

@description('Days a deleted Key Vault (or secret) can be recovered. Set once, when the vault is created: Key Vault does not let it change afterwards.')
@minValue(7)
@maxValue(90)
param keyVaultSoftDeleteRetentionInDays int = 90

@description('Purge protection on the Key Vault: a deleted vault or secret cannot be purged before the retention ends. Irreversible once on; `azd down --purge` then leaves the vault name taken until the retention ends.')
param keyVaultEnablePurgeProtection bool = true

@description('default: create the vault. recover: recover the soft-deleted vault of this name (after `azd down`, the next `azd up` in the same environment would otherwise fail for up to the retention, because the name is taken by the deleted vault), with its secrets; set it back to default once recovered (docs/deploy.md#after-azd-down).')
@allowed([
  'default'
  'recover'
])
param keyVaultCreateMode string = 'default'

// ---------------------------------------------------------------------------------------------------------------
// The app's own settings (README, "Configuration"; docs/authentication.md)
// ---------------------------------------------------------------------------------------------------------------

@description('PARTNER_CENTER_AUTH: app-user (production: the Secure Application Model, refresh token in Key Vault) or managed-identity (app-only tokens, which the production Referrals API refuses).')
@allowed([
  'app-user'
  'managed-identity'
])
param partnerCenterAuth string = 'app-user'

@description('PARTNER_CENTER_WRITE_METHOD: put (the whole referral) or patch (a JSON Patch of the changed fields, the update Microsoft recommends).')
@allowed([
  'put'
  'patch'
])
param partnerCenterWriteMethod string = 'put'

@description('PARTNER_TENANT_ID (app-user): the partner\'s Entra tenant, where the app registration and the Referrals Admin user live. Empty: the tenant of this subscription.')
param partnerTenantId string = ''

@description('APP_REGISTRATION_CLIENT_ID (app-user): client id of the app registration the refresh token belongs to. Required for app-user; until it is set, /api/health reports the app as misconfigured.')
param appRegistrationClientId string = ''

@description('APP_CLIENT_AUTH (app-user): how the app registration authenticates when it redeems the refresh token. federated: a managed-identity token through a federated identity credential (no secret); key-vault-secret: a client secret stored in the vault under appClientSecretName; none: a public client.')
@allowed([
  'federated'
  'key-vault-secret'
  'none'
])
param appClientAuth string = 'federated'

@description('APP_CLIENT_SECRET_NAME (app-user with appClientAuth key-vault-secret): name of the Key Vault secret holding the app registration\'s client secret. Ignored otherwise.')
param appClientSecretName string = ''

@description('REFRESH_TOKEN_SECRET_NAME (app-user): name of the Key Vault secret holding the partner\'s refresh token; `npm run auth:bootstrap --secret-name` must use the same name.')
param refreshTokenSecretName string = 'partner-center-refresh-token'

@description('PARTNER_CENTER_BASE_URL: the Referrals API origin. Empty: the app\'s default, https://api.partner.microsoft.com.')
param partnerCenterBaseUrl string = ''

@description('Name of a Key Vault secret holding WEBHOOK_SECRETS (Standard Webhooks secrets, whsec_…). Set: the app setting is a Key Vault reference to it and every request must be signed; the identity gets read access to the vault. Empty: signatures are not required.')
param webhookSecretsSecretName string = ''

@description('UPSTREAM_BUDGET_MS: total time one event may spend upstream, retries and waits included. Keep it well under Power Automate\'s 120 s.')
@minValue(1000)
@maxValue(110000)
param upstreamBudgetMs int = 60000

@description('UPSTREAM_REQUEST_TIMEOUT_MS: timeout of one upstream request.')
@minValue(100)
@maxValue(110000)
param upstreamRequestTimeoutMs int = 15000

@description('STAGE_MAP: the CRM stages an event\'s stage field may name, mapped to a status and substatus: dynamics365, salesforce, hubspot, or a JSON object such as {"Closed Won": "Closed/Won"} (docs/stages.md). Empty: no map, and an event with a stage gets a 400.')
param stageMap string = ''

@description('DEFAULT_DELIVERY: sync answers every event when it is applied; async accepts it with 202 and a status URL unless the request asks for sync (docs/async-delivery.md).')
@allowed([
  'sync'
  'async'
])
param defaultDelivery string = 'sync'

@description('ASYNC_MAX_AGE_SECONDS: how long after its acceptance a queued event may still be applied; then it is dead-lettered.')
@minValue(1)
@maxValue(604800)
param asyncMaxAgeSeconds int = 86400

@description('ASYNC_RETRY_MIN_SECONDS: first delay before a queued event is tried again.')
@minValue(1)
@maxValue(3600)
param asyncRetryMinSeconds int = 30

@description('ASYNC_RETRY_MAX_SECONDS: longest delay between two tries of a queued event (at least asyncRetryMinSeconds).')
@minValue(1)
@maxValue(86400)
param asyncRetryMaxSeconds int = 900

@description('ASYNC_POLL_SECONDS: Retry-After of a 202 (how often a client polls the status URL).')
@minValue(1)
@maxValue(600)
param asyncPollSeconds int = 5

@description('ASYNC_QUEUE_NAME: the storage queue of accepted events; the template creates it and <name>-poison.')
@minLength(3)
@maxLength(56)
param asyncQueueName string = 'referral-updates'

// ---------------------------------------------------------------------------------------------------------------

var abbrs = loadJsonContent('./abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var functionAppName = '${abbrs.webSitesFunctions}api-${resourceToken}'
var deploymentStorageContainerName = 'app-package-${take(functionAppName, 32)}-${take(toLower(uniqueString(functionAppName, resourceToken)), 7)}'
var effectivePartnerTenantId = empty(partnerTenantId) ? tenant().tenantId : partnerTenantId

resource rg 'Microsoft.Resources/resourceGroups@2022-09-01' = {
  name: !empty(resourceGroupName) ? resourceGroupName : '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: tags
}

// The one identity of the app: host storage, deployment package, idempotency table, queues, Key Vault, Application
// Insights ingestion and, through AZURE_CLIENT_ID, the Partner Center token.
module identity './app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: '${abbrs.managedIdentityUserAssignedIdentities}api-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage './app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: '${abbrs.storageStorageAccounts}${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: deploymentStorageContainerName
    queueName: asyncQueueName
  }
}

module monitoring './app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    applicationInsightsName: '${abbrs.insightsComponents}${resourceToken}'
    location: location
    tags: tags
    retentionInDays: logRetentionInDays
  }
}

module keyVault './app/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: '${abbrs.keyVaultVaults}${resourceToken}'
    location: location
    tags: tags
    publicNetworkAccess: keyVaultPublicNetworkAccess
    softDeleteRetentionInDays: keyVaultSoftDeleteRetentionInDays
    enablePurgeProtection: keyVaultEnablePurgeProtection
    createMode: keyVaultCreateMode
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsId
  }
}

// Role assignments before the app, so the host finds its storage readable when it first starts.
module rbac './app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    keyVaultName: keyVault.outputs.name
    identityPrincipalId: identity.outputs.principalId
    appWritesSecrets: partnerCenterAuth == 'app-user'
    secretWriterRole: keyVaultSecretWriterRole
    appResolvesReferences: !empty(webhookSecretsSecretName)
    deployerPrincipalId: deployerKeyVaultAccess == 'on' || (deployerKeyVaultAccess == 'auto' && principalType == 'User') ? principalId : ''
    deployerPrincipalType: principalType
  }
}

module api './app/api.bicep' = {
  name: 'api'
  scope: rg
  dependsOn: [
    rbac
  ]
  params: {
    name: functionAppName
    planName: '${abbrs.webServerFarms}${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    storageBlobEndpoint: storage.outputs.blobEndpoint
    storageTableEndpoint: storage.outputs.tableEndpoint
    storageQueueEndpoint: storage.outputs.queueEndpoint
    deploymentContainerName: deploymentStorageContainerName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    keyVaultUri: keyVault.outputs.uri
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    partnerCenterAuth: partnerCenterAuth
    partnerCenterWriteMethod: partnerCenterWriteMethod
    partnerTenantId: effectivePartnerTenantId
    appRegistrationClientId: appRegistrationClientId
    appClientAuth: appClientAuth
    appClientSecretName: appClientSecretName
    refreshTokenSecretName: refreshTokenSecretName
    partnerCenterBaseUrl: partnerCenterBaseUrl
    webhookSecretsSecretName: webhookSecretsSecretName
    upstreamBudgetMs: upstreamBudgetMs
    upstreamRequestTimeoutMs: upstreamRequestTimeoutMs
    defaultDelivery: defaultDelivery
    asyncMaxAgeSeconds: asyncMaxAgeSeconds
    asyncRetryMinSeconds: asyncRetryMinSeconds
    asyncRetryMaxSeconds: asyncRetryMaxSeconds
    asyncPollSeconds: asyncPollSeconds
    asyncQueueName: asyncQueueName
    stageMap: stageMap
  }
}

// azd writes these to .azure/<environment>/.env (`azd env get-value NAME`).
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output SERVICE_API_NAME string = api.outputs.name
output AZURE_FUNCTION_NAME string = api.outputs.name
output FUNCTION_APP_HOSTNAME string = api.outputs.defaultHostName
output API_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output API_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output KEY_VAULT_NAME string = keyVault.outputs.name
output KEY_VAULT_URL string = keyVault.outputs.uri
output PARTNER_TENANT_ID string = effectivePartnerTenantId
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.applicationInsightsName
