require ["fileinto", "variables", "regex"];
set :quoteregex "re" "a.b";
if string :regex "axb" "${re}" { fileinto "never"; }
if string :regex "a.b" "^${re}$" { fileinto "q2"; }
