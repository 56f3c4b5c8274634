/** The memory deliveries store keeps the DeliveryStore contract the Table store keeps (test/support/delivery-store-contract.ts). */
import { createMemoryDeliveryStore } from '../../shared/delivery/store.js';
import { deliveryStoreContract } from '../support/delivery-store-contract.js';

deliveryStoreContract('memory', createMemoryDeliveryStore);
