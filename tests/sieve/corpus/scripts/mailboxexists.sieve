require ["mailbox", "fileinto"];
if mailboxexists "INBOX" { fileinto "inbox-exists"; }
