require ["fileinto", "variables", "include"];
global "listname";
if header :matches "list-id" "*<*>*" { set "listname" "${2}"; fileinto "Lists"; return; }
fileinto "not-a-list";
