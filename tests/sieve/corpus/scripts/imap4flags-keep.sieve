require ["imap4flags"];
if header :contains "subject" "report" { addflag "\\Flagged"; keep; }
addflag "\\Seen";
