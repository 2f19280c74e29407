require ["include", "variables", "fileinto"];
global "listname";
include :personal "lib-lists";
if string :is "${listname}" "reports.example.com" { fileinto "reports-list"; }
include :once "lib-flags";
include :once "lib-flags";
