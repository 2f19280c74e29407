require ["fileinto", "variables", "relational"];
set "folder" "Lists";
set :lower "low" "MiXeD";
set :upper "up" "MiXeD";
set :upperfirst "uf" "mixed";
set :lowerfirst "lf" "MIXED";
set :length "len" "hello";
set :quotewildcard "qw" "a*b?c\\d";
set :upper :lowerfirst "combo" "abc";
fileinto "${folder}/${low}-${up}-${uf}-${lf}-${len}";
fileinto "${combo}";
if string :is "${qw}" "a\\*b\\?c\\\\d" { fileinto "qw-ok"; }
if string :is "${undefined}" "" { fileinto "undef-empty"; }
if string :count "eq" ["a", "", "b"] "2" { fileinto "count-2"; }
fileinto "${fol}der${";
fileinto "x${FOLDER}y";
