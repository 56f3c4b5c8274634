// Key Vault for the Secure Application Model (the partner's refresh token, rotated by the app) and the
// webhook secrets. Azure RBAC only (no access policies), soft delete and purge protection.

@description('Name of the vault (3-24 letters, digits and dashes).')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region.')
param location string

@description('Tags for the vault.')
param tags object = {}

@description('Enabled or Disabled. Disabled needs a private endpoint, which this template does not create.')
@allowed([
  'Enabled'
  'Disabled'
])
param publicNetworkAccess string = 'Enabled'

@description('Days a deleted vault or secret can be recovered (fixed when the vault is created).')
@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int = 90

@description('Purge protection (irreversible once on).')
param enablePurgeProtection bool = true

@description('default, or recover: recover the soft-deleted vault of this name instead of creating one (as the Azure Verified Modules key-vault module offers).')
@allowed([
  'default'
  'recover'
])
param createMode string = 'default'

@description('Log Analytics workspace receiving the vault\'s audit log (every secret read and write, with the caller).')
param logAnalyticsWorkspaceId string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    // recover: the soft-deleted vault of this name comes back with its secrets (a purge-protected name cannot be
    // reused until its retention ends; learn.microsoft.com/azure/key-vault/general/key-vault-recovery).
    createMode: createMode
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    // Key Vault refuses `false` here once it was true: leave it unset instead.
    enablePurgeProtection: enablePurgeProtection ? true : null
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: publicNetworkAccess
    networkAcls: {
      defaultAction: publicNetworkAccess == 'Enabled' ? 'Allow' : 'Deny'
      bypass: 'AzureServices'
    }
  }
}

// The audit log: every data-plane operation (SecretGet, SecretSet, …) with the caller's identity and address,
// never a secret's value (learn.microsoft.com/azure/key-vault/general/logging). diagnosticSettings has only
// preview API versions; 2021-05-01-preview is the one the Azure Verified Modules use.
resource audit 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit-to-log-analytics'
  scope: vault
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        category: 'AuditEvent'
        enabled: true
      }
    ]
  }
}

output name string = vault.name
output id string = vault.id
output uri string = vault.properties.vaultUri
