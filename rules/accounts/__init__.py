"""Staff and client accounts: roles, passwords, login throttling."""
