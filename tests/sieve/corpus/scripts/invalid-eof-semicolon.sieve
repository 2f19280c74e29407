require "fileinto";
fileinto "Junk"
