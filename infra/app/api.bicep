// The function app: a Flex Consumption plan, the Node 22 app running the package from a blob container, and its
// app settings. Every app setting is either one the app validates (shared/config.ts, CONFIGURATION_VARIABLES) or
// one the Functions host reads; test/unit/infra.test.ts checks both lists and feeds these settings to the app's
// own configuration parser.

@description('Name of the function app (also the first part of its default host name).')
param name string

@description('Name of the Flex Consumption plan (one app per plan).')
param planName string

@description('Azure region.')
param location string

@description('Tags for the plan and the app; the app also gets azd-service-name so that `azd deploy` finds it.')
param tags object = {}

@description('azd service name in azure.yaml.')
param serviceName string = 'api'

@description('Resource id of the user-assigned identity the app runs as.')
param identityId string

@description('Client id of that identity (AZURE_CLIENT_ID, AzureWebJobsStorage__clientId, Application Insights ingestion).')
param identityClientId string

@description('Name of the storage account (AzureWebJobsStorage__accountName).')
param storageAccountName string

@description('Blob endpoint of the storage account, with a trailing slash.')
param storageBlobEndpoint string

@description('Table endpoint of the storage account, with a trailing slash.')
param storageTableEndpoint string

@description('Queue endpoint of the storage account, with a trailing slash.')
param storageQueueEndpoint string

@description('Blob container holding the deployment package.')
param deploymentContainerName string

@description('Application Insights component (Entra ID ingestion only).')
param applicationInsightsName string

@description('URI of the Key Vault, with a trailing slash.')
param keyVaultUri string

@description('Memory of each instance, in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Most instances the app scales out to (1-1000).')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 10

@description('PARTNER_CENTER_AUTH.')
@allowed([
  'app-user'
  'managed-identity'
])
param partnerCenterAuth string

@description('PARTNER_CENTER_WRITE_METHOD.')
@allowed([
  'put'
  'patch'
])
param partnerCenterWriteMethod string

@description('PARTNER_TENANT_ID (app-user).')
param partnerTenantId string

@description('APP_REGISTRATION_CLIENT_ID (app-user); empty leaves it unset.')
param appRegistrationClientId string = ''

@description('APP_CLIENT_AUTH (app-user).')
@allowed([
  'federated'
  'key-vault-secret'
  'none'
])
param appClientAuth string = 'federated'

@description('APP_CLIENT_SECRET_NAME (app-user with key-vault-secret); empty leaves it unset.')
param appClientSecretName string = ''

@description('REFRESH_TOKEN_SECRET_NAME (app-user).')
param refreshTokenSecretName string = 'partner-center-refresh-token'

@description('PARTNER_CENTER_BASE_URL; empty leaves the app\'s default.')
param partnerCenterBaseUrl string = ''

@description('Key Vault secret holding WEBHOOK_SECRETS; empty leaves signatures off.')
param webhookSecretsSecretName string = ''

@description('UPSTREAM_BUDGET_MS.')
@minValue(1000)
@maxValue(110000)
param upstreamBudgetMs int = 60000

@description('UPSTREAM_REQUEST_TIMEOUT_MS.')
@minValue(100)
@maxValue(110000)
param upstreamRequestTimeoutMs int = 15000

@description('DEFAULT_DELIVERY.')
@allowed([
  'sync'
  'async'
])
param defaultDelivery string = 'sync'

@description('ASYNC_MAX_AGE_SECONDS.')
@minValue(1)
@maxValue(604800)
param asyncMaxAgeSeconds int = 86400

@description('ASYNC_RETRY_MIN_SECONDS.')
@minValue(1)
@maxValue(3600)
param asyncRetryMinSeconds int = 30

@description('ASYNC_RETRY_MAX_SECONDS (at least ASYNC_RETRY_MIN_SECONDS).')
@minValue(1)
@maxValue(86400)
param asyncRetryMaxSeconds int = 900

@description('ASYNC_POLL_SECONDS.')
@minValue(1)
@maxValue(600)
param asyncPollSeconds int = 5

@description('ASYNC_QUEUE_NAME (the queue the storage module creates, with its poison queue).')
@minLength(3)
@maxLength(56)
param asyncQueueName string = 'referral-updates'

@description('STAGE_MAP: dynamics365, salesforce, hubspot or a JSON object of your own; empty leaves it unset.')
param stageMap string = ''

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

// Read by the Functions host and by the app: identity-based host storage (blob), idempotency table, queues, and
// Entra ID ingestion into Application Insights. No connection string or key anywhere.
var identitySettings = {
  AZURE_CLIENT_ID: identityClientId
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  // Beside the service URIs: with only __blobServiceUri the host can fail to create its blob client at start-up
  // (a documented race, with host unhealthy and 401s on Flex Consumption); __accountName avoids it
  // (https://github.com/Azure/azure-functions-host/issues/11787). The app reads __tableServiceUri and __queueServiceUri;
  // the host's queue triggers (the delivery worker and its poison queue) read __queueServiceUri too.
  AzureWebJobsStorage__accountName: storageAccountName
  AzureWebJobsStorage__blobServiceUri: storageBlobEndpoint
  AzureWebJobsStorage__tableServiceUri: storageTableEndpoint
  AzureWebJobsStorage__queueServiceUri: storageQueueEndpoint
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsights.properties.ConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
}

var behaviourSettings = {
  PARTNER_CENTER_AUTH: partnerCenterAuth
  PARTNER_CENTER_WRITE_METHOD: partnerCenterWriteMethod
  IDEMPOTENCY_STORE: 'table'
  UPSTREAM_BUDGET_MS: string(upstreamBudgetMs)
  UPSTREAM_REQUEST_TIMEOUT_MS: string(upstreamRequestTimeoutMs)
  DEFAULT_DELIVERY: defaultDelivery
  ASYNC_MAX_AGE_SECONDS: string(asyncMaxAgeSeconds)
  ASYNC_RETRY_MIN_SECONDS: string(asyncRetryMinSeconds)
  ASYNC_RETRY_MAX_SECONDS: string(asyncRetryMaxSeconds)
  ASYNC_POLL_SECONDS: string(asyncPollSeconds)
  ASYNC_QUEUE_NAME: asyncQueueName
}

var partnerCenterSettings = empty(partnerCenterBaseUrl) ? {} : { PARTNER_CENTER_BASE_URL: partnerCenterBaseUrl }

// The Secure Application Model (docs/authentication.md); nothing of it in managed-identity mode.
var appUserSettings = partnerCenterAuth != 'app-user' ? {} : union(
  {
    KEY_VAULT_URL: keyVaultUri
    PARTNER_TENANT_ID: partnerTenantId
    APP_CLIENT_AUTH: appClientAuth
    REFRESH_TOKEN_SECRET_NAME: refreshTokenSecretName
  },
  empty(appRegistrationClientId) ? {} : { APP_REGISTRATION_CLIENT_ID: appRegistrationClientId },
  appClientAuth == 'key-vault-secret' && !empty(appClientSecretName) ? { APP_CLIENT_SECRET_NAME: appClientSecretName } : {}
)

// A Key Vault reference: the platform resolves it with keyVaultReferenceIdentity, and the app sees the secret.
var webhookSettings = empty(webhookSecretsSecretName) ? {} : {
  WEBHOOK_SECRETS: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/${webhookSecretsSecretName})'
}

// CRM stages → status (docs/stages.md); unset, an event's stage is refused with a 400 that says how to set it.
var stageSettings = empty(stageMap) ? {} : { STAGE_MAP: stageMap }

var appSettings = union(
  identitySettings,
  behaviourSettings,
  partnerCenterSettings,
  appUserSettings,
  webhookSettings,
  stageSettings
)

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': serviceName })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
    }
    // Flex Consumption: runtime, scale and the package location live here, not in app settings
    // (no FUNCTIONS_WORKER_RUNTIME, FUNCTIONS_EXTENSION_VERSION or WEBSITE_RUN_FROM_PACKAGE).
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'node'
        version: '22'
      }
    }
  }
}

// Replaces every app setting on each `azd provision`: change settings through the parameters, not the portal.
resource settings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: functionApp
  name: 'appsettings'
  properties: appSettings
}

// No FTP or basic-auth SCM publishing: deployments (azd, az CLI) authenticate with Entra ID.
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  // Not in the resource type's schema (a BCP187 warning), but deployments without it are reported to fail with
  // "The parameter location has an invalid value"; Azure Verified Modules set it too.
  #disable-next-line BCP187
  location: location
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  // Not in the resource type's schema (a BCP187 warning), but deployments without it are reported to fail with
  // "The parameter location has an invalid value"; Azure Verified Modules set it too.
  #disable-next-line BCP187
  location: location
  properties: {
    allow: false
  }
}

output name string = functionApp.name
output id string = functionApp.id
output defaultHostName string = functionApp.properties.defaultHostName
