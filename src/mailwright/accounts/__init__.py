"""Accounts: password hashing, recipient resolution, authentication with bans."""
