require ["include"];
include :optional "nonexistent";
keep;
