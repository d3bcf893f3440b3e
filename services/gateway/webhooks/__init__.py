"""Subscriptions: other systems receive the suite's events as signed webhooks (docs/webhooks.md)."""
