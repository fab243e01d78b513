"""The deployment orchestrator: resumable red-black deployments as persisted plans of actions."""
