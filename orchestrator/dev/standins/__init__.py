"""Local stand-ins for providers we cannot reach (Twilio, FCM, an SMTP relay, webhook
receivers), speaking their public wire formats: used by the tests and by `orchestrator demo`."""
