// Replaced by the registry/subsystem tests.
