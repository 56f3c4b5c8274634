/**
 * Timer: every 5 minutes, re-sends the queue message of an accepted event that is not final and has most
 * likely lost its message (docs/async-delivery.md#reconciler). Without asynchronous delivery it logs and does
 * nothing.
 */
import { app, type InvocationContext, type Timer } from '@azure/functions';
import { APP } from '../shared/runtime.js';
import { reconcileDeliveries } from '../shared/use-cases/reconcile-deliveries.js';

export async function referralUpdateReconciler(_timer: Timer, context: InvocationContext): Promise<void> {
  await reconcileDeliveries(context, APP);
}

app.timer('referral-update-reconciler', {
  schedule: '0 */5 * * * *',
  runOnStartup: false,
  handler: referralUpdateReconciler,
});
