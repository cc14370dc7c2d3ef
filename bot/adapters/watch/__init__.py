"""The worker's storage: tables and rows (`tables`), rules and checks (`store`), the outbox (`outbox`)."""
