"""Tiercel notifications: chat messages, webhooks and e-mail sent from flows."""
