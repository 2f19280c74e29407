"""Local delivery: from a staged message and envelope recipients to mailboxes."""
