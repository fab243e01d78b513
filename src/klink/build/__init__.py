"""Build: versioned artifacts from source (``klink build``), kept in an artifact store."""
