require "ereject";
if address :domain :is "from" "spam.example" { ereject "Refused."; }
