// Probes module.
