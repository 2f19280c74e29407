require ["fileinto"];
if header :is "subject" text:
Quarterly report [ticket #4711]
.
{ fileinto "never-crlf"; }
fileinto text: # comment
..dotted
.
;
