"""The tracker adapters against stateful local fakes of GitHub, GitLab and Jira over HTTP."""
