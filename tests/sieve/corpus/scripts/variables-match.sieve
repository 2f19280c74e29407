require ["fileinto", "variables"];
if header :matches "subject" "*report [ticket #*]" {
    fileinto "m-${1}-${2}";
}
if address :matches "from" "*@*" { set "user" "${1}"; set "dom" "${2}"; }
fileinto "from-${user}-at-${dom}";
if header :matches "subject" "?*" { fileinto "first-${1}"; }
if header :matches "subject" "*weekend*" { fileinto "nope"; }
fileinto "still-${1}";
if header :matches "message-id" "<*-*@*>" { fileinto "id-${1}-${2}-${3}-${4}"; }
if string :matches "a.b.c" "*.*" { fileinto "split-${1}-${2}"; }
