"""Plans: reusable prices subscriptions bill by."""
