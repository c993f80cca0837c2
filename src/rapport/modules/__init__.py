"""What one product needs beyond the shared core: one package per module, each with its own
schema, used by the app and the command line through its `service` like any domain."""
