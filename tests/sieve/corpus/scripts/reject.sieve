require "reject";
if header :contains "subject" "BUY" { reject "No spam please."; }
