"""Chat: Slack and Hubot as front doors to Klink's verbs (see docs/chat.md)."""
