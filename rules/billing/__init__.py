"""Billing: invoices, tax, late fees, notices, card capture, status updates and the cron run."""
