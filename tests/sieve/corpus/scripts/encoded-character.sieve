require ["fileinto", "encoded-character"];
if header :contains "subject" "${hex:47 72 c3 bc}" { fileinto "hex"; }
if header :contains "subject" "${unicode:fc}${unicode: 00df }e" { fileinto "unicode"; }
fileinto "lit-${hex:4A}";
fileinto "bad-${hex:zz}";
