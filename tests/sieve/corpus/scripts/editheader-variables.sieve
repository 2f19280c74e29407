require ["editheader", "fileinto", "variables", "index"];
if header :matches "subject" "*" { addheader "X-Original-Subject" "${1}"; }
deleteheader :matches "subject" "*report*";
if header :matches "x-original-subject" "*" { fileinto "orig-${1}"; }
if exists "subject" { fileinto "subject-kept"; }
addheader :last "X-A" "1";
addheader :last "X-A" "2";
if header :index 2 :is "x-a" "2" { fileinto "index-2"; }
