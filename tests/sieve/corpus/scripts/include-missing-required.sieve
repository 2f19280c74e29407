require ["include", "fileinto"];
include "nonexistent";
fileinto "after";
