"""Mail: templates, the outbox, delivery, the email log and mass mail."""
