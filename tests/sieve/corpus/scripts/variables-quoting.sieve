require ["fileinto", "variables"];
set :quotewildcard "pat" "*report*";
if string :matches "*report*" "${pat}" { fileinto "q1"; }
if string :matches "a report" "${pat}" { fileinto "never"; }
