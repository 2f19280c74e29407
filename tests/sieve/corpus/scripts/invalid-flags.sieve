require "fileinto";
fileinto :flags "x" "y";
