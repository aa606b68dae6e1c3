"""Backups: one tar archive holding a consistent dump of the database, the keys, the configuration
file and a manifest of SHA-256 sums with the recording index; written on demand (`liandong backup`)
or every few hours by the server, and restored onto a fresh data folder (`liandong restore`)."""
