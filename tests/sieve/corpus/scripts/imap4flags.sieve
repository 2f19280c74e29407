require ["fileinto", "imap4flags", "variables"];
setflag "\\Seen";
addflag ["\\Flagged", "$Label1"];
removeflag "\\seen";
fileinto "flagged";
addflag "myvar" "a b";
addflag "myvar" "c A";
if hasflag :is "myvar" "c" { fileinto "has-c"; }
if hasflag :contains "flag" { fileinto "has-flag"; }
fileinto :flags "${myvar}" "explicit";
setflag "\\Answered";
