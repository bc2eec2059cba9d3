"""Local fakes of the services Preloop talks to that cannot run here (Slack, Mattermost)
and a real SMTP server's mailbox, shared by the channel tests."""
