require ["duplicate", "fileinto", "variables"];
if duplicate { fileinto "dup"; }
if duplicate :header "subject" :handle "s" { fileinto "dup-subject"; }
if duplicate :uniqueid "x" { fileinto "dup-x"; }
if duplicate :uniqueid "x" { fileinto "dup-x-again"; }
