require ["include", "fileinto"];
include :global "spam";
fileinto "after-global";
