// Role assignments, each on the narrowest scope the consumer works at (docs/deploy.md, "Roles").

@description('Storage account of the app (host storage, deployment package, idempotency table, delivery queues).')
param storageAccountName string

@description('Application Insights component the app sends telemetry to.')
param applicationInsightsName string

@description('Key Vault holding the refresh token and the webhook secrets.')
param keyVaultName string

@description('Principal (object) id of the app\'s user-assigned managed identity.')
param identityPrincipalId string

@description('app-user: the app reads the refresh token and writes each rotated one back (a new version of the same secret), so it needs secret get and set on the vault.')
param appWritesSecrets bool

@description('How the app gets secret get and set: custom (default) a custom role with exactly those two data actions; builtin Key Vault Secrets Officer, the narrowest built-in role that can write a secret, for a deployer who may not create role definitions (it can also delete and purge every secret).')
@allowed([
  'custom'
  'builtin'
])
param secretWriterRole string = 'custom'

@description('A Key Vault reference (the webhook secrets) is resolved with the app identity: Key Vault Secrets User (read only), as Microsoft documents for references.')
param appResolvesReferences bool

@description('Object id of the deployer, given Key Vault Secrets Officer to run the bootstrap and store secrets. Empty: none (main.bicep leaves it empty for a pipeline unless asked).')
param deployerPrincipalId string = ''

@description('Principal type of the deployer.')
@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
param deployerPrincipalType string = 'User'

// Built-in role definition ids (learn.microsoft.com, "Azure built-in roles").
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
}

// Key Vault data actions (learn.microsoft.com/azure/role-based-access-control/permissions/security#microsoftkeyvault):
// getSecret/action is Get Secret (the value; the app reads the newest version), setSecret/action is Set Secret
// (a new version). Nothing to list, delete, purge, back up or restore, and no control-plane action.
var secretGetSetDataActions = [
  'Microsoft.KeyVault/vaults/secrets/getSecret/action'
  'Microsoft.KeyVault/vaults/secrets/setSecret/action'
]
// (A variable: the tree-sitter grammar the offline tests use misreads a call followed by `.id` inside an array.)
var resourceGroupId = resourceGroup().id
var useCustomWriter = appWritesSecrets && secretWriterRole == 'custom'
var secretGetSetRoleName = guid(resourceGroup().id, 'key-vault-secret-get-set')
var secretWriterRoleId = useCustomWriter ? secretGetSetRoleName : roles.keyVaultSecretsOfficer

resource storage 'Microsoft.Storage/storageAccounts@2024-01-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

// The Functions host keeps its keys, leases and the deployment package in blobs and creates the containers
// it needs (azure-webjobs-hosts, azure-webjobs-secrets): Blob Data Owner, as the quickstart grants.
resource blobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identityPrincipalId, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Idempotency records (IDEMPOTENCY_STORE=table): the app creates its table on first use, reads and writes rows.
resource tableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identityPrincipalId, roles.storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Asynchronous delivery (docs/async-delivery.md): the app sends messages (with a visibility delay) and creates the
// queue and its poison queue on first use; the host's queue trigger receives, updates (visibility) and deletes
// messages and writes the poison queue. Storage Queue Data Reader + Message Processor, the pair Microsoft lists for
// a queue trigger alone, is not enough: neither can add a message (the app's send, the host's move to
// `<queue>-poison`) nor create a queue. Contributor is the least built-in role that covers all of it
// (https://learn.microsoft.com/azure/azure-functions/functions-reference#grant-permission-to-the-identity,
// https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/storage#storage-queue-data-contributor).
resource queueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identityPrincipalId, roles.storageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Entra ID ingestion into the component, which accepts nothing else (DisableLocalAuth).
resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, identityPrincipalId, roles.monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Role definitions have no resource group of their own: this one is assignable only in this group, and named per
// group because custom role names are unique in the tenant.
resource secretGetSet 'Microsoft.Authorization/roleDefinitions@2022-04-01' = if (useCustomWriter) {
  name: secretGetSetRoleName
  properties: {
    roleName: 'Key Vault secret get and set (${resourceGroup().name}, ${uniqueString(resourceGroup().id)})'
    description: 'Read a secret and write a new version of it: what the Partner Center referral webhook needs to rotate its refresh token. No list, delete, purge, backup or restore.'
    type: 'CustomRole'
    permissions: [
      {
        actions: []
        notActions: []
        dataActions: secretGetSetDataActions
        notDataActions: []
      }
    ]
    assignableScopes: [
      resourceGroupId
    ]
  }
}

resource appSecretWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (appWritesSecrets) {
  name: guid(vault.id, identityPrincipalId, 'secret-writer', secretWriterRole)
  scope: vault
  dependsOn: [
    secretGetSet
  ]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', secretWriterRoleId)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appReferenceReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (appResolvesReferences) {
  name: guid(vault.id, identityPrincipalId, roles.keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource deployerKeyVaultRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId)) {
  name: guid(vault.id, deployerPrincipalId, roles.keyVaultSecretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
  }
}
