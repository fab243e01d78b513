"""The read-only web UI: server-rendered pages over the services' HTTP clients, live via SSE."""
