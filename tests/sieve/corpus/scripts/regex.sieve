require ["fileinto", "regex", "variables"];
if header :regex "subject" "#([0-9]+)" { fileinto "ticket-${1}"; }
if header :regex "subject" "ticket #[0-9]+" { fileinto "regex-1"; }
if header :regex "subject" "^[[:alpha:]]+ report" { fileinto "regex-2"; }
if header :regex :comparator "i;octet" "subject" "QUARTERLY" { fileinto "regex-3"; }
if header :regex "subject" "QUARTERLY" { fileinto "regex-4"; }
if header :regex "subject" "(plans|offer)" { fileinto "regex-5"; }
if address :regex :domain "from" "^(sub\\.)?example\\.(com|org)$" { fileinto "regex-6"; }
if header :regex "message-id" "^<[a-z]+-[0-9]+@" { fileinto "regex-7"; }
