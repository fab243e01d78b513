"""``klink``: the command line, a client of the HTTP APIs only (it imports no service module)."""
