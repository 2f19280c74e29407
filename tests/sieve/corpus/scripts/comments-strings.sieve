require ["fileinto"]; # a comment
/* a bracket
   comment */
if header :contains "subject" "\"" { fileinto "quote"; }
if header :is "subject" "Quarterly\ report [ticket #4711]" { fileinto "escaped-space"; }
fileinto "back\\slash";
